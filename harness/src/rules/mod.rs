//! Rule catalog and passive monitors.

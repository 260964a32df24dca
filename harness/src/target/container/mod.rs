//! `container:` targets: a broker in a Docker container started through
//! testcontainers (async runner), published on 127.0.0.1 only, removed after.
//!
//! Spec forms (one string, so `run --target` and `cargo test` share it):
//!
//! - `container:mosquitto`: `mqtt-conformance/mosquitto:2.0.11` (built by
//!   `fixtures/containers/build-images.sh`);
//! - `container:rabbitmq`: `mqtt-conformance/rabbitmq:3.10.8` with its MQTT plugin;
//! - `container:rabbitmq-ws`: the same image, MQTT over WebSocket through
//!   its `rabbitmq_web_mqtt` plugin (port 15675, path `/ws`);
//! - `container:IMAGE[:TAG]`: any image, MQTT on port 1883, ready when it
//!   answers an MQTT CONNECT;
//! - options after `?`, joined by `&`: `port=N` (the MQTT port inside the
//!   container), `wait=TEXT` (a log line to wait for first), `image=NAME[:TAG]`
//!   (swap the image of a built-in, e.g. `container:mosquitto?image=eclipse-mosquitto:2`),
//!   `without=CAP,CAP` and `with=CAP,CAP` (capability claims),
//!   `startup=SECONDS` (default 90), `ws=PATH` (the port speaks MQTT over
//!   WebSocket at PATH).
//!
//! No image is ever pulled: there may be no registry. A missing image is a
//! one-line error saying how to build it.

use std::time::Duration;

#[cfg(feature = "containers")]
mod docker;
#[cfg(feature = "containers")]
pub use docker::{mqtt_probe, preflight, BrokerContainer, ContainerFaults};

/// Why a `container:` target cannot start in a build without Docker support.
#[cfg(not(feature = "containers"))]
pub const NOT_BUILT: &str = "this build has no container support (the `containers` feature, \
     testcontainers): rebuild with `--features containers`, e.g. \
     `cargo install --path harness --features containers`";

/// Without the `containers` feature no Docker engine is asked: always
/// [`NOT_BUILT`].
#[cfg(not(feature = "containers"))]
pub async fn preflight(_spec: &ContainerSpec) -> Result<(), String> {
    Err(NOT_BUILT.into())
}

/// The build script named in "image missing" errors.
pub const BUILD_SCRIPT: &str = "fixtures/containers/build-images.sh";

/// A parsed `container:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Short name for report directories (`container-mosquitto`, ...).
    pub short: String,
    /// Image repository, e.g. `mqtt-conformance/mosquitto`.
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// MQTT port inside the container.
    pub port: u16,
    /// Log text to wait for before probing MQTT (empty: probe only).
    pub wait: String,
    /// Capabilities claimed.
    pub capabilities: Vec<String>,
    /// Longest wait for the broker to become ready.
    pub startup: Duration,
    /// Which built-in recipe made the image (for the "how to build it" hint).
    pub recipe: Option<&'static str>,
    /// The port speaks MQTT over WebSocket at this path.
    pub websocket: Option<String>,
}

/// Capabilities of the project's Mosquitto image: a full broker, faults, and
/// persistence (its config keeps sessions across a restart).
fn mosquitto_caps() -> Vec<String> {
    let mut c = super::full_broker_capabilities();
    c.extend(["faults".to_string(), "persistence".to_string()]);
    c
}

/// RabbitMQ's MQTT plugin has no QoS 2 (it grants QoS 1 to a QoS 2
/// SUBSCRIBE, which MQTT 3.1.1 allows), so `qos2` is not claimed.
fn rabbitmq_caps() -> Vec<String> {
    let mut c: Vec<String> = super::full_broker_capabilities()
        .into_iter()
        .filter(|c| c != "qos2")
        .collect();
    c.push("faults".into());
    c
}

fn split_image(s: &str) -> (String, String) {
    // The tag follows the last ':' after the last '/' (a registry may have a port).
    let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[slash..].rfind(':') {
        Some(i) => (s[..slash + i].to_string(), s[slash + i + 1..].to_string()),
        None => (s.to_string(), "latest".to_string()),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ContainerSpec {
    /// Parses what follows `container:`.
    pub fn parse(rest: &str) -> Result<ContainerSpec, String> {
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, q),
            None => (rest, ""),
        };
        if base.is_empty() || base.contains(char::is_whitespace) {
            return Err(format!(
                "container target `container:{rest}`: expected container:mosquitto, container:rabbitmq, container:rabbitmq-ws or container:IMAGE[:TAG][?port=N&wait=TEXT]"
            ));
        }
        let mut spec = match base {
            "mosquitto" => ContainerSpec {
                short: "container-mosquitto".into(),
                image: "mqtt-conformance/mosquitto".into(),
                tag: "2.0.11".into(),
                port: 1883,
                wait: "running".into(),
                capabilities: mosquitto_caps(),
                startup: Duration::from_secs(90),
                recipe: Some("mosquitto"),
                websocket: None,
            },
            "rabbitmq" => ContainerSpec {
                short: "container-rabbitmq".into(),
                image: "mqtt-conformance/rabbitmq".into(),
                tag: "3.10.8".into(),
                port: 1883,
                wait: "Server startup complete".into(),
                capabilities: rabbitmq_caps(),
                startup: Duration::from_secs(120),
                recipe: Some("rabbitmq"),
                websocket: None,
            },
            // The web_mqtt listener of the same image. No `faults`: a fault
            // case's second broker is dialled over plain TCP.
            "rabbitmq-ws" => ContainerSpec {
                short: "container-rabbitmq-ws".into(),
                image: "mqtt-conformance/rabbitmq".into(),
                tag: "3.10.8".into(),
                port: 15675,
                wait: "Server startup complete".into(),
                capabilities: {
                    let mut c = rabbitmq_caps();
                    c.retain(|c| c != "faults");
                    c.push(super::websocket::CAPABILITY.into());
                    c
                },
                startup: Duration::from_secs(120),
                recipe: Some("rabbitmq"),
                websocket: Some("/ws".into()),
            },
            other => {
                let (image, tag) = split_image(other);
                let mut caps = super::full_broker_capabilities();
                caps.push("faults".into());
                ContainerSpec {
                    short: format!("container-{}", sanitize(&format!("{image}_{tag}"))),
                    image,
                    tag,
                    port: 1883,
                    wait: String::new(),
                    capabilities: caps,
                    startup: Duration::from_secs(90),
                    recipe: None,
                    websocket: None,
                }
            }
        };
        for opt in query.split('&').filter(|o| !o.is_empty()) {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            match k {
                "port" => {
                    spec.port = v
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("container option port=`{v}`: expected 1-65535"))?
                }
                "wait" => spec.wait = v.to_string(),
                "ws" => {
                    if !v.starts_with('/') {
                        return Err(format!("container option ws=`{v}`: expected a path, e.g. ws=/mqtt"));
                    }
                    spec.websocket = Some(v.to_string());
                    if !spec.capabilities.iter().any(|c| c == super::websocket::CAPABILITY) {
                        spec.capabilities.push(super::websocket::CAPABILITY.into());
                    }
                }
                "image" => {
                    let (image, tag) = split_image(v);
                    if image.is_empty() {
                        return Err("container option image=: expected NAME[:TAG]".into());
                    }
                    spec.image = image;
                    spec.tag = tag;
                    spec.recipe = None;
                }
                "startup" => {
                    let s: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| {
                            format!("container option startup=`{v}`: expected seconds, 1-3600")
                        })?;
                    spec.startup = Duration::from_secs(s);
                }
                "with" | "without" => {
                    for cap in v.split(',').filter(|c| !c.is_empty()) {
                        if !super::CAPABILITIES.contains(&cap) {
                            return Err(format!(
                                "container option {k}=: unknown capability `{cap}`; known: {}",
                                super::CAPABILITIES.join(", ")
                            ));
                        }
                        spec.capabilities.retain(|c| c != cap);
                        if k == "with" {
                            spec.capabilities.push(cap.to_string());
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown container option `{k}`; known: port, wait, image, with, without, startup, ws"
                    ))
                }
            }
        }
        Ok(spec)
    }

    /// `IMAGE:TAG`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// How to get the image: the recipe's build command, or a hint.
    pub fn build_hint(&self) -> String {
        match self.recipe {
            Some(r) => format!("build it offline with `{BUILD_SCRIPT} {r}`"),
            None => "build or `docker load` it first (nothing is pulled)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_use_the_project_images() {
        let m = ContainerSpec::parse("mosquitto").unwrap();
        assert_eq!(m.reference(), "mqtt-conformance/mosquitto:2.0.11");
        assert_eq!(m.short, "container-mosquitto");
        assert!(m.capabilities.contains(&"persistence".to_string()));
        let r = ContainerSpec::parse("rabbitmq").unwrap();
        assert_eq!(r.reference(), "mqtt-conformance/rabbitmq:3.10.8");
        assert!(!r.capabilities.contains(&"qos2".to_string()));
        assert!(r.capabilities.contains(&"faults".to_string()));
        let w = ContainerSpec::parse("rabbitmq-ws").unwrap();
        assert_eq!((w.port, w.websocket.as_deref()), (15675, Some("/ws")));
        assert!(w.capabilities.contains(&"websocket".to_string()));
        assert!(!w.capabilities.contains(&"faults".to_string()));
        let g = ContainerSpec::parse("img:1?port=8080&ws=/mqtt").unwrap();
        assert_eq!(g.websocket.as_deref(), Some("/mqtt"));
        assert!(ContainerSpec::parse("img:1?ws=mqtt").is_err());
    }

    #[test]
    fn any_image_with_options() {
        let s = ContainerSpec::parse("localhost:5000/my/broker:1.2?port=11883&wait=ready now&without=retain,qos2&with=sys-topics").unwrap();
        assert_eq!(s.image, "localhost:5000/my/broker");
        assert_eq!(s.tag, "1.2");
        assert_eq!(s.port, 11883);
        assert_eq!(s.wait, "ready now");
        assert!(!s.capabilities.contains(&"retain".to_string()));
        assert!(s.capabilities.contains(&"sys-topics".to_string()));
        assert_eq!(s.short, "container-localhost_5000_my_broker_1.2");
        let plain = ContainerSpec::parse("emqx").unwrap();
        assert_eq!(plain.reference(), "emqx:latest");
        let swapped = ContainerSpec::parse("mosquitto?image=eclipse-mosquitto:2").unwrap();
        assert_eq!(swapped.reference(), "eclipse-mosquitto:2");
        assert_eq!(swapped.short, "container-mosquitto");
        assert!(swapped.build_hint().contains("docker load"));
    }

    #[test]
    fn bad_options_are_one_line_errors() {
        for bad in [
            "",
            "mosquitto?port=0",
            "mosquitto?port=x",
            "mosquitto?colour=red",
            "mosquitto?without=qos7",
            "mosquitto?startup=0",
            "my image",
        ] {
            let e = ContainerSpec::parse(bad).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }
}

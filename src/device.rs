//! Device names of the command line: `cpu`, `wgpu`, `vulkan`, `cuda[:N]`.

use burn::prelude::Device;

use crate::error::{Error, Result};

pub fn parse(name: &str) -> Result<Device> {
    let missing = |feature: &str| {
        Error::Device(format!(
            "this build has no {feature} backend; rebuild with `--features {feature}`"
        ))
    };
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(Device::wgpu(Default::default()));
            #[cfg(not(feature = "wgpu"))]
            Err(missing("wgpu"))
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            return Ok(Device::vulkan(Default::default()));
            #[cfg(not(feature = "vulkan"))]
            Err(missing("vulkan"))
        }
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let index: usize = match name.strip_prefix("cuda:") {
                Some(i) => i
                    .parse()
                    .map_err(|_| Error::Device(format!("bad CUDA device {name:?}")))?,
                None => 0,
            };
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            #[cfg(not(feature = "cuda"))]
            {
                let _ = index;
                Err(missing("cuda"))
            }
        }
        _ => Err(Error::Device(format!(
            "unknown device {name:?}; use cpu, wgpu, vulkan or cuda[:N]"
        ))),
    }
}

/// A comma-separated list of devices (`cuda:0,cuda:1`): data-parallel training's, the first of
/// which holds the model.
pub fn parse_list(list: &str) -> Result<Vec<Device>> {
    names(list).map(parse).collect()
}

/// The names of a comma-separated device list.
pub fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::parse("cpu").is_ok());
        assert!(
            super::parse("tpu")
                .unwrap_err()
                .to_string()
                .contains("unknown device")
        );
        assert!(super::parse("cuda:x").is_err());
        assert_eq!(super::parse_list("cpu, cpu").unwrap().len(), 2);
        assert!(super::parse_list("cpu,").is_err());
    }
}

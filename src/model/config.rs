//! Model configuration: reads and writes the Hugging Face `config.json` of an Idefics3 /
//! SmolVLM checkpoint, and names the tiny preset trained by this project.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An activation a config names (`hidden_act`, spelled as transformers spells it). Names this
/// crate does not run fail to load, naming themselves; [`Idefics3Config::validate`] rejects one
/// that its block cannot run (the text MLP is SwiGLU: `silu`; the vision MLP a GELU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// GELU with the tanh approximation (SigLIP's default; `gelu_new` is the same formula).
    #[serde(rename = "gelu_pytorch_tanh", alias = "gelu_new")]
    GeluTanh,
    /// Exact GELU (the error function).
    #[serde(rename = "gelu")]
    Gelu,
    /// `x * sigmoid(x)`, the gate of Llama's SwiGLU.
    #[serde(rename = "silu")]
    Silu,
}

/// SigLIP-style vision tower (`vision_config` in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "gelu_tanh")]
    pub hidden_act: Activation,
    #[serde(default = "eps6")]
    pub layer_norm_eps: f64,
}

/// Llama text model (`text_config` in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "eps6")]
    pub rms_norm_eps: f64,
    /// Older configs carry `rope_theta` at the top level, newer ones in `rope_parameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default = "ctx")]
    pub max_position_embeddings: usize,
    #[serde(default = "silu")]
    pub hidden_act: Activation,
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// The whole model (`Idefics3ForConditionalGeneration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idefics3Config {
    #[serde(default = "arch")]
    pub architectures: Vec<String>,
    #[serde(default = "model_type")]
    pub model_type: String,
    pub image_token_id: u32,
    #[serde(default = "two")]
    pub scale_factor: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    pub vision_config: VisionConfig,
    pub text_config: TextConfig,
}

fn three() -> usize {
    3
}
fn two() -> usize {
    2
}
fn eps6() -> f64 {
    1e-6
}
fn ctx() -> usize {
    2048
}
fn gelu_tanh() -> Activation {
    Activation::GeluTanh
}
fn silu() -> Activation {
    Activation::Silu
}
fn arch() -> Vec<String> {
    vec!["Idefics3ForConditionalGeneration".into()]
}
/// The checkpoints whose module tree medground's model mirrors.
const MODEL_TYPES: [&str; 2] = ["idefics3", "smolvlm"];
const ARCHITECTURES: [&str; 2] = [
    "Idefics3ForConditionalGeneration",
    "SmolVLMForConditionalGeneration",
];

fn model_type() -> String {
    "idefics3".into()
}

impl TextConfig {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }
    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0)
    }
}

impl VisionConfig {
    /// Patches along one side of the (square) input.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
}

impl Idefics3Config {
    /// Image tokens one image becomes after the pixel-shuffle connector.
    pub fn image_seq_len(&self) -> usize {
        let side = self.vision_config.patches_per_side() / self.scale_factor;
        side * side
    }

    /// Whether the output projection shares the token embedding matrix.
    pub fn tied(&self) -> bool {
        self.tie_word_embeddings || self.text_config.tie_word_embeddings
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("config.json: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// The config at pixel-shuffle scale `s`, its context grown (or shrunk) by the change in
    /// image tokens so that prompts keep the same room for text.
    pub fn regridded(&self, s: usize) -> Result<Self> {
        let mut c = self.clone();
        c.scale_factor = s;
        c.validate()?;
        let grown = c.text_config.max_position_embeddings + c.image_seq_len();
        c.text_config.max_position_embeddings = grown.saturating_sub(self.image_seq_len());
        Ok(c)
    }

    /// Rejects shapes the model cannot be built with, before any tensor is allocated.
    pub fn validate(&self) -> Result<()> {
        let v = &self.vision_config;
        let t = &self.text_config;
        let bad = |m: String| Err(Error::Config(m));
        if !MODEL_TYPES.contains(&self.model_type.as_str()) {
            return bad(format!(
                "model_type {:?}: medground runs {} models only",
                self.model_type,
                MODEL_TYPES.join(" and ")
            ));
        }
        if let Some(a) = self
            .architectures
            .iter()
            .find(|a| !ARCHITECTURES.contains(&a.as_str()))
        {
            return bad(format!(
                "architecture {a:?}: medground runs {} only",
                ARCHITECTURES.join(" and ")
            ));
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return bad(format!(
                "image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if self.scale_factor == 0 || !v.patches_per_side().is_multiple_of(self.scale_factor) {
            return bad(format!(
                "{} patches per side do not divide by scale_factor {}",
                v.patches_per_side(),
                self.scale_factor
            ));
        }
        if v.num_attention_heads == 0 || !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return bad("vision hidden_size must divide by num_attention_heads".into());
        }
        if t.num_attention_heads == 0
            || t.kv_heads() == 0
            || !t.num_attention_heads.is_multiple_of(t.kv_heads())
        {
            return bad(
                "text num_attention_heads must be a multiple of num_key_value_heads".into(),
            );
        }
        if !t.head_dim().is_multiple_of(2) {
            return bad("text head_dim must be even for rotary embeddings".into());
        }
        if self.image_token_id as usize >= t.vocab_size {
            return bad(format!(
                "image_token_id {} is outside the vocabulary of {}",
                self.image_token_id, t.vocab_size
            ));
        }
        if v.hidden_act == Activation::Silu {
            return bad(
                "vision hidden_act silu: the vision MLP runs gelu or gelu_pytorch_tanh".into(),
            );
        }
        if t.hidden_act != Activation::Silu {
            return bad(format!(
                "text hidden_act {:?}: the text MLP is SwiGLU and runs silu only",
                t.hidden_act
            ));
        }
        Ok(())
    }

    /// The tiny preset trained and shipped by this project: grayscale films replicated to three
    /// channels, a few million parameters, small enough to train on a laptop CPU.
    /// `vocab_size` and `image_token_id` come from the project's tokenizer.
    pub fn tiny(vocab_size: usize, image_token_id: u32) -> Self {
        Self {
            architectures: arch(),
            model_type: model_type(),
            image_token_id,
            scale_factor: 2,
            tie_word_embeddings: false,
            vision_config: VisionConfig {
                hidden_size: 192,
                intermediate_size: 768,
                num_hidden_layers: 6,
                num_attention_heads: 3,
                num_channels: 3,
                image_size: 224,
                patch_size: 16,
                hidden_act: gelu_tanh(),
                layer_norm_eps: 1e-6,
            },
            text_config: TextConfig {
                vocab_size,
                hidden_size: 256,
                intermediate_size: 768,
                num_hidden_layers: 6,
                num_attention_heads: 4,
                num_key_value_heads: Some(2),
                head_dim: None,
                rms_norm_eps: 1e-5,
                rope_theta: Some(10_000.0),
                rope_parameters: None,
                max_position_embeddings: 256,
                hidden_act: silu(),
                tie_word_embeddings: false,
            },
        }
    }
}

impl Idefics3Config {
    /// SmolVLM-256M's and -500M's shapes (`smolvlm-256m`, `smolvlm-500m`) at one 512-px tile
    /// (no image splitting: 64 image tokens), for benchmarks and tests at real size with random
    /// weights: SigLIP 768 x 12 layers, patch 16, scale factor 4; the SmolLM2 text model; the
    /// real vocabulary of 49,280. `image_token_id` comes from the tokenizer used with it.
    pub fn smolvlm(name: &str, image_token_id: u32) -> Result<Self> {
        // (hidden, layers, heads, kv heads, intermediate) of the text model.
        let (hidden, layers, heads, kv, inter) = match name {
            "smolvlm-256m" => (576, 30, 9, 3, 1536),
            "smolvlm-500m" => (960, 32, 15, 5, 2560),
            _ => {
                return Err(Error::Config(format!(
                    "unknown preset {name:?}; use tiny, smolvlm-256m or smolvlm-500m"
                )));
            }
        };
        let mut c = Self::tiny(49_280, image_token_id);
        c.scale_factor = 4;
        c.vision_config = VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 512,
            ..c.vision_config
        };
        c.text_config = TextConfig {
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv),
            head_dim: Some(64),
            rope_theta: Some(100_000.0),
            max_position_embeddings: 8192,
            ..c.text_config
        };
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_preset_is_valid_and_round_trips() {
        let c = Idefics3Config::tiny(600, 5);
        c.validate().unwrap();
        assert_eq!(c.image_seq_len(), 49);
        let back = Idefics3Config::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn smolvlm_presets_have_the_real_shapes() {
        let c = Idefics3Config::smolvlm("smolvlm-256m", 5).unwrap();
        assert_eq!(c.image_seq_len(), 64);
        assert_eq!(c.text_config.head_dim(), 64);
        assert!(Idefics3Config::smolvlm("smolvlm-500m", 5).is_ok());
        assert!(Idefics3Config::smolvlm("smolvlm-2b", 5).is_err());
    }

    #[test]
    fn activations_are_typed_and_checked_per_block() {
        let json = Idefics3Config::tiny(600, 5).to_json();
        assert!(json.contains("\"gelu_pytorch_tanh\"") && json.contains("\"silu\""));
        let unknown = json.replacen("\"gelu_pytorch_tanh\"", "\"quick_gelu\"", 1);
        let e = Idefics3Config::from_json(&unknown).unwrap_err().to_string();
        assert!(e.contains("unknown variant `quick_gelu`"), "{e}");
        let text_gelu = json.replacen("\"silu\"", "\"gelu\"", 1);
        let e = Idefics3Config::from_json(&text_gelu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("text hidden_act") && e.contains("silu only"),
            "{e}"
        );
        let alias = json.replacen("\"gelu_pytorch_tanh\"", "\"gelu_new\"", 1);
        let c = Idefics3Config::from_json(&alias).unwrap();
        assert_eq!(c.vision_config.hidden_act, Activation::GeluTanh);
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        let mut c = Idefics3Config::tiny(600, 5);
        c.scale_factor = 3;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("scale_factor")
        );
        let mut c = Idefics3Config::tiny(600, 900);
        c.image_token_id = 900;
        assert!(c.validate().is_err());
        assert!(Idefics3Config::tiny(600, 5).regridded(3).is_err());
    }

    /// A finer image grid grows the context by the image tokens it adds.
    #[test]
    fn regridded_keeps_the_room_for_text() {
        let c = Idefics3Config::tiny(600, 5);
        let fine = c.regridded(1).unwrap();
        assert_eq!(fine.image_seq_len(), 196);
        assert_eq!(fine.text_config.max_position_embeddings, 256 + 196 - 49);
        assert_eq!(fine.regridded(2).unwrap(), c);
    }

    #[test]
    fn reads_rope_theta_from_either_place() {
        let mut t = Idefics3Config::tiny(600, 5).text_config;
        t.rope_theta = None;
        t.rope_parameters = Some(RopeParameters {
            rope_theta: Some(100_000.0),
            rope_type: Some("default".into()),
        });
        assert_eq!(t.rope_theta(), 100_000.0);
    }
}

//! `Idefics3ForConditionalGeneration`: the vision tower's features pass through the connector and
//! take the places of the `<image>` placeholder tokens in the text model's input.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::config::Idefics3Config;
use super::connector::Connector;
use super::lora::linear;
use super::text::{KvCache, LlamaModel};
use super::vision::VisionTransformer;

/// `model`.
#[derive(Module, Debug)]
pub struct Idefics3Model {
    pub vision_model: VisionTransformer,
    pub connector: Connector,
    pub text_model: LlamaModel,
}

/// The whole checkpoint. `lm_head` is absent when the config ties it to `embed_tokens`.
#[derive(Module, Debug)]
pub struct Idefics3 {
    pub model: Idefics3Model,
    pub lm_head: Option<Linear>,
}

/// A batch of prompts, each holding its image's `<image>` placeholders: one tile's worth, or
/// for a tiled image (SmolVLM's processor) each tile's in turn, the global view last.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Token ids, `[batch][seq]`, all rows the same length.
    pub ids: Vec<Vec<u32>>,
    /// Pixels `[batch * tiles, channels, H, W]` in [-1, 1], each row's tiles together and in
    /// prompt order (`tiles` is 1 for an untiled image).
    pub pixels: Tensor<4>,
}

impl Idefics3 {
    pub fn new(c: &Idefics3Config, device: &Device) -> Self {
        Self {
            model: Idefics3Model {
                vision_model: VisionTransformer::new(&c.vision_config, device),
                connector: Connector::new(c, device),
                text_model: LlamaModel::new(&c.text_config, device),
            },
            lm_head: (!c.tied()).then(|| {
                LinearConfig::new(c.text_config.hidden_size, c.text_config.vocab_size)
                    .with_bias(false)
                    .init(device)
            }),
        }
    }

    /// Image tokens `[batch, image_seq_len, text_hidden]` for `[batch, C, H, W]` pixels.
    pub fn image_features(&self, pixels: Tensor<4>) -> Tensor<3> {
        let features = self.model.vision_model.forward(pixels);
        self.model.connector.forward(features)
    }

    /// Text embeddings with image features spliced in, in order, at the placeholder positions.
    pub fn merge_embeddings(
        &self,
        ids: &[Vec<u32>],
        image_token: u32,
        images: Tensor<3>,
    ) -> Tensor<3> {
        let device = images.device();
        let [b, n_img, d] = images.dims();
        let seq = ids[0].len();
        let flat: Vec<i64> = ids.iter().flatten().map(|&t| t as i64).collect();
        let text = self.model.text_model.embed(
            Tensor::<1, Int>::from_data(TensorData::new(flat, [b * seq]), &device)
                .reshape([b, seq]),
        );
        // One gather over [text rows ; image rows] builds the merged sequence.
        let mut index = Vec::with_capacity(b * seq);
        for (row, tokens) in ids.iter().enumerate() {
            let mut k = 0;
            for (pos, &t) in tokens.iter().enumerate() {
                if t == image_token && k < n_img {
                    index.push((b * seq + row * n_img + k) as i64);
                    k += 1;
                } else {
                    index.push((row * seq + pos) as i64);
                }
            }
        }
        let all = Tensor::cat(
            vec![text.reshape([b * seq, d]), images.reshape([b * n_img, d])],
            0,
        );
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [b * seq]), &device);
        all.select(0, index).reshape([b, seq, d])
    }

    /// Input embeddings of a batch: text with the image features in place.
    pub fn embed_batch(&self, batch: &Batch, image_token: u32) -> Tensor<3> {
        self.embed_batch_with_patches(batch, image_token).0
    }

    /// [`Self::embed_batch`], and the vision tower's patch features `[batch, patches, hidden]`
    /// the image tokens were made from (stage 1's dense probe reads them).
    pub fn embed_batch_with_patches(
        &self,
        batch: &Batch,
        image_token: u32,
    ) -> (Tensor<3>, Tensor<3>) {
        let patches = self.model.vision_model.forward(batch.pixels.clone());
        (
            self.embed_patches(batch, image_token, patches.clone()),
            patches,
        )
    }

    /// Input embeddings of a batch from its images' patch features (the vision tower's output,
    /// `[batch * tiles, patches, hidden]`): the connector, then the merge.
    pub fn embed_patches(&self, batch: &Batch, image_token: u32, patches: Tensor<3>) -> Tensor<3> {
        let images = self.model.connector.forward(patches);
        // A row's tiles in sequence: [batch * tiles, n, d] -> [batch, tiles * n, d].
        let [rows_tiles, n, d] = images.dims();
        let b = batch.ids.len().max(1);
        let images = images.reshape([b, rows_tiles / b * n, d]);
        self.merge_embeddings(&batch.ids, image_token, images)
    }

    /// Hidden states -> vocabulary logits.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => linear(head, hidden),
            None => hidden.matmul(
                self.model
                    .text_model
                    .embed_tokens
                    .weight
                    .val()
                    .transpose()
                    .unsqueeze_dim(0),
            ),
        }
    }

    /// Full forward pass: `[batch, seq, vocab]` logits.
    pub fn forward(
        &self,
        batch: &Batch,
        image_token: u32,
        cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let embeds = self.embed_batch(batch, image_token);
        self.logits(self.model.text_model.forward(embeds, cache))
    }

    /// Logits of the last position only, `[batch, vocab]`, continuing from `cache`.
    pub fn last_logits(&self, embeds: Tensor<3>, cache: &mut KvCache) -> Tensor<2> {
        let hidden = self.model.text_model.forward(embeds, Some(cache));
        let [b, s, d] = hidden.dims();
        let last = hidden.slice([0..b, s - 1..s, 0..d]);
        self.logits(last).squeeze_dim(1)
    }

    /// Embeddings of single next tokens, `[batch, 1, hidden]`.
    pub fn embed_tokens(&self, tokens: &[u32], device: &Device) -> Tensor<3> {
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let n = ids.len();
        self.model
            .text_model
            .embed(Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), device).reshape([n, 1]))
    }
}

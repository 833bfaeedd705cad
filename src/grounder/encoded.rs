//! A film read once, asked many phrases: [`Grounder::encode_async`] runs the vision tower and
//! the connector (and scores the film against the out-of-distribution model) once; each phrase
//! then only splices those image tokens into its prompt and decodes
//! ([`Grounder::ground_encoded_async`]). The six shifted views that the agreement reads are
//! encoded on first need, through the tower as one batch, and kept for the film's next phrase.

use std::cell::OnceCell;
use std::sync::atomic::Ordering;

use burn::prelude::*;

use super::{Grounder, Grounding};
use crate::error::Result;
use crate::image::{Picture, preprocess::model_input, processor, views};
use crate::model::generate::generate;
use crate::protocol::answer::PixelBox;
use crate::protocol::constrain::BoxAnswer;
use crate::protocol::{GridBox, ood};

/// One image's tokens as the prompt takes them.
struct Tokens {
    /// The connector's output, `[1, tiles * image_seq_len, text_hidden]`.
    images: Tensor<3>,
    /// The tile grid the prompt names (`(0, 0)`: one untiled image).
    grid: (usize, usize),
    width: u32,
    height: u32,
}

/// A view of the film: its tokens and where its origin lies in the film's pixels.
struct View {
    tokens: Tokens,
    origin: [i64; 2],
}

/// A film encoded by [`Grounder::encode_async`].
pub struct Encoded {
    film: Tokens,
    /// Pooled vision features of the film (the global view when tiled), when the bundle has an
    /// out-of-distribution model.
    pub features: Vec<f32>,
    /// The out-of-distribution score and whether it is inside the threshold.
    pub distribution: Option<(f32, bool)>,
    /// Milliseconds the encoding took.
    pub ms: f64,
    /// The picture, for its views when an agreement is asked for.
    picture: Picture,
    views: OnceCell<Vec<View>>,
}

impl Encoded {
    /// The film's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.film.width, self.film.height)
    }
}

impl Grounder {
    /// Image tokens of `pictures`, all through the vision tower as one batch; with
    /// `pool`, the pooled features of the first picture's last tile too.
    fn image_tokens(
        &self,
        pictures: &[&Picture],
        pool: bool,
    ) -> Result<(Vec<Tokens>, Option<Tensor<3>>)> {
        let mut pixels = vec![];
        let mut layout = vec![];
        let size = self.config.vision_config.image_size;
        for p in pictures {
            match &self.processor {
                None => {
                    pixels.extend(model_input(p, size as u32));
                    layout.push((1, (0, 0)));
                }
                Some(settings) => {
                    let tiles = processor::process(p, settings)?;
                    layout.push((tiles.count(), (tiles.rows, tiles.cols)));
                    pixels.extend(tiles.pixels);
                }
            }
        }
        let n: usize = layout.iter().map(|l| l.0).sum();
        self.tower_runs.fetch_add(1, Ordering::Relaxed);
        let patches = self
            .model
            .model
            .vision_model
            .forward(self.image_tensor(pixels, n, size));
        let pooled = pool.then(|| {
            let [_, tokens, dim] = patches.dims();
            let last = layout[0].0 - 1;
            patches.clone().slice([last..last + 1, 0..tokens, 0..dim])
        });
        let images = self.model.model.connector.forward(patches);
        let [_, seq, d] = images.dims();
        let mut at = 0;
        let out = pictures
            .iter()
            .zip(layout)
            .map(|(p, (tiles, grid))| {
                let t = images.clone().slice([at..at + tiles, 0..seq, 0..d]);
                at += tiles;
                Tokens {
                    images: t.reshape([1, tiles * seq, d]),
                    grid,
                    width: p.width,
                    height: p.height,
                }
            })
            .collect();
        Ok((out, pooled))
    }

    /// Reads `picture` once: its image tokens, and its out-of-distribution score where the
    /// bundle holds the model.
    pub async fn encode_async(&self, picture: &Picture) -> Result<Encoded> {
        let start = web_time::Instant::now();
        // A film with a border is scored without it: the tower reads it a second time.
        let trimmed = self
            .ood
            .as_ref()
            .and_then(|_| crate::image::views::trim(picture));
        let (mut tokens, pooled) =
            self.image_tokens(&[picture], self.ood.is_some() && trimmed.is_none())?;
        let features = match (pooled, trimmed) {
            (Some(last), _) => {
                let [_, n, dim] = last.dims();
                ood::pool(&crate::model::read_back(last).await?, n, dim)
            }
            (None, Some((border_free, _))) => self.pooled_features(&border_free).await?,
            (None, None) => vec![],
        };
        let distribution = self.distribution(&features)?;
        Ok(Encoded {
            film: tokens.remove(0),
            features,
            distribution,
            ms: start.elapsed().as_secs_f64() * 1000.0,
            picture: picture.clone(),
            views: OnceCell::new(),
        })
    }

    /// The constrained answer to `phrase` on `tokens`: its text and probability.
    async fn answer_tokens(&self, tokens: &Tokens, phrase: &str) -> Result<(String, f32)> {
        let ids = self.tiled_prompt_ids(phrase, 0, tokens.grid)?;
        let embeds =
            self.model
                .merge_embeddings(&[ids], self.config.image_token_id, tokens.images.clone());
        let answer = BoxAnswer::new(&self.tokens.answer_vocab);
        let generation = generate(&self.model, &self.rope, embeds, answer).await?;
        Ok((
            self.tokens.decode(&generation.tokens)?,
            generation.confidence(),
        ))
    }

    /// The constrained answer to `phrase` on an encoded film: its text and probability.
    pub async fn answer_encoded_async(
        &self,
        film: &Encoded,
        phrase: &str,
    ) -> Result<(String, f32)> {
        self.answer_tokens(&film.film, phrase).await
    }

    /// How well the boxes of `phrase` on shifted views of the film ([`views::VIEWS`]) agree
    /// with `answer`, its box on the whole film: their mean IoU in the film's pixels (a view
    /// answered with no box counts 0). The views are encoded on first need, as one batch.
    pub async fn agreement_encoded_async(
        &self,
        film: &Encoded,
        phrase: &str,
        answer: &PixelBox,
    ) -> Result<f32> {
        let picture = &film.picture;
        if film.views.get().is_none() {
            let cut: Vec<(Picture, [i64; 2])> = views::VIEWS
                .iter()
                .map(|&c| views::view(picture, c))
                .collect();
            let pictures: Vec<&Picture> = cut.iter().map(|v| &v.0).collect();
            let (tokens, _) = self.image_tokens(&pictures, false)?;
            let encoded = tokens
                .into_iter()
                .zip(cut)
                .map(|(tokens, (_, origin))| View { tokens, origin })
                .collect();
            let _ = film.views.set(encoded);
        }
        let mut sum = 0.0;
        for v in film.views.get().expect("views encoded above") {
            let (text, _) = self.answer_tokens(&v.tokens, phrase).await?;
            if let Ok(grid) = GridBox::parse(&text) {
                let b = grid.to_pixels(v.tokens.width, v.tokens.height);
                let (dx, dy) = (v.origin[0] as f32, v.origin[1] as f32);
                let moved = PixelBox {
                    x1: b.x1 + dx,
                    y1: b.y1 + dy,
                    x2: b.x2 + dx,
                    y2: b.y2 + dy,
                };
                sum += moved.iou(answer);
            }
        }
        Ok(sum / views::VIEWS.len() as f32)
    }

    /// Grounds `phrase` in an encoded film. `ms` counts this phrase's work only.
    pub async fn ground_encoded_async(&self, film: &Encoded, phrase: &str) -> Result<Grounding> {
        let start = web_time::Instant::now();
        let (text, probability) = self.answer_encoded_async(film, phrase).await?;
        let grid = GridBox::parse(&text)?;
        let (width, height) = film.size();
        let own = grid.to_pixels(width, height);
        let distribution = film.distribution;
        // Outside the training films the calibration says nothing: no confidence (and no
        // views to read for one).
        let inside = distribution.is_none_or(|d| d.1);
        let agreement = match &self.calibration {
            Some(c) if inside && c.needs_agreement(phrase) => {
                Some(self.agreement_encoded_async(film, phrase, &own).await?)
            }
            _ => None,
        };
        Ok(Grounding {
            box_px: [own.x1, own.y1, own.x2, own.y2],
            box_norm: [grid.x1, grid.y1, grid.x2, grid.y2],
            text,
            confidence: inside.then(|| {
                self.confidence(probability, phrase, distribution.map(|d| d.0), agreement)
            }),
            calibrated: inside && self.calibration.is_some(),
            probability,
            in_distribution: distribution.map(|d| d.1),
            ood_score: distribution.map(|d| d.0),
            ood_threshold: self.ood.as_ref().map(|o| o.threshold),
            ood_typical: self.ood.as_ref().map(|o| o.typical),
            agreement,
            ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Encodes `picture` and grounds `phrase` in it; `ms` counts both.
    pub async fn ground_async(&self, picture: &Picture, phrase: &str) -> Result<Grounding> {
        let film = self.encode_async(picture).await?;
        let mut g = self.ground_encoded_async(&film, phrase).await?;
        g.ms += film.ms;
        Ok(g)
    }

    /// The out-of-distribution score of pooled features and whether it is inside, where the
    /// bundle holds the model.
    pub fn distribution(&self, features: &[f32]) -> Result<Option<(f32, bool)>> {
        self.ood
            .as_ref()
            .map(|o| o.score(features).map(|s| (s, o.inside(s))))
            .transpose()
    }

    /// The image's pooled vision features alone, flat bands along its edges trimmed
    /// (`image::views::trim`): what the out-of-distribution model scores.
    pub async fn features_async(&self, picture: &Picture) -> Result<Vec<f32>> {
        match crate::image::views::trim(picture) {
            Some((border_free, _)) => self.pooled_features(&border_free).await,
            None => self.pooled_features(picture).await,
        }
    }

    /// The pooled vision features of `picture` as it is.
    async fn pooled_features(&self, picture: &Picture) -> Result<Vec<f32>> {
        let (_, pooled) = self.image_tokens(&[picture], true)?;
        let last = pooled.expect("pooled features asked for");
        let [_, n, dim] = last.dims();
        Ok(ood::pool(&crate::model::read_back(last).await?, n, dim))
    }

    /// The constrained answer to `phrase` on `picture` (encoded for this one phrase): its
    /// text and probability.
    pub async fn answer_async(&self, picture: &Picture, phrase: &str) -> Result<(String, f32)> {
        let film = self.encode_async(picture).await?;
        self.answer_encoded_async(&film, phrase).await
    }

    /// Blocking form of [`Self::answer_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn answer(&self, picture: &Picture, phrase: &str) -> Result<(String, f32)> {
        pollster::block_on(self.answer_async(picture, phrase))
    }

    /// Blocking form of [`Self::encode_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn encode(&self, picture: &Picture) -> Result<Encoded> {
        pollster::block_on(self.encode_async(picture))
    }

    /// Blocking form of [`Self::answer_encoded_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn answer_encoded(&self, film: &Encoded, phrase: &str) -> Result<(String, f32)> {
        pollster::block_on(self.answer_encoded_async(film, phrase))
    }

    /// Blocking form of [`Self::agreement_encoded_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn agreement_encoded(
        &self,
        film: &Encoded,
        phrase: &str,
        answer: &PixelBox,
    ) -> Result<f32> {
        pollster::block_on(self.agreement_encoded_async(film, phrase, answer))
    }

    /// Blocking form of [`Self::ground_encoded_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn ground_encoded(&self, film: &Encoded, phrase: &str) -> Result<Grounding> {
        pollster::block_on(self.ground_encoded_async(film, phrase))
    }

    /// Blocking form of [`Self::ground_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn ground(&self, picture: &Picture, phrase: &str) -> Result<Grounding> {
        pollster::block_on(self.ground_async(picture, phrase))
    }

    /// Blocking form of [`Self::features_async`] for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn features(&self, picture: &Picture) -> Result<Vec<f32>> {
        pollster::block_on(self.features_async(picture))
    }
}

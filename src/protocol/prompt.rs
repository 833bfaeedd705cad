//! Prompts in the paper's form, wrapped in the Idefics3 / SmolVLM chat layout with one global
//! image: `<|im_start|>User:<fake_token_around_image><global-img><image>…<fake_token_around_image>`
//! `[refer] give me the location of {phrase}<end_of_utterance>\nAssistant:`.

use crate::error::{Error, Result};

/// The six instructions of the paper; training draws one at random, evaluation uses the first.
pub const TEMPLATES: [&str; 6] = [
    "give me the location of {}",
    "where is {} ?",
    "from this image, tell me the location of {}",
    "the location of {} is",
    "could you tell me the location for {} ?",
    "where can I locate the {} ?",
];

pub const IMAGE_TOKEN: &str = "<image>";
pub const FAKE_TOKEN: &str = "<fake_token_around_image>";
pub const GLOBAL_IMG: &str = "<global-img>";
pub const BEGIN: &str = "<|im_start|>";
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";

/// Longest phrase accepted, in characters (the token budget is checked separately).
pub const MAX_PHRASE_CHARS: usize = 300;

/// The instruction of the alignment stage's description task.
pub const CAPTION: &str = "[caption] list the findings";

/// A prompt for one image: a phrase to locate, or the description task.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    instruction: String,
}

impl Prompt {
    /// Checks and normalises the phrase: trimmed, inner white space folded, not empty, printable,
    /// at most [`MAX_PHRASE_CHARS`] characters.
    pub fn new(phrase: &str, template: usize) -> Result<Self> {
        let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        if phrase.is_empty() {
            return Err(Error::Phrase("the phrase is empty".into()));
        }
        if phrase.chars().count() > MAX_PHRASE_CHARS {
            return Err(Error::Phrase(format!(
                "the phrase has {} characters; at most {MAX_PHRASE_CHARS} are accepted",
                phrase.chars().count()
            )));
        }
        if phrase.chars().any(|c| c.is_control()) {
            return Err(Error::Phrase("the phrase holds control characters".into()));
        }
        if template >= TEMPLATES.len() {
            return Err(Error::Phrase(format!("no instruction template {template}")));
        }
        Ok(Self {
            instruction: format!("[refer] {}", TEMPLATES[template].replace("{}", &phrase)),
        })
    }

    /// The description task of the alignment stage.
    pub fn caption() -> Self {
        Self {
            instruction: CAPTION.into(),
        }
    }

    /// The instruction: `[refer] give me the location of {phrase}`.
    pub fn instruction(&self) -> &str {
        &self.instruction
    }

    /// The full text fed to the model for one untiled image of `image_tokens` placeholders.
    pub fn render(&self, image_tokens: usize) -> String {
        self.render_tiled(0, 0, image_tokens)
    }

    /// The full text for an image cut into `rows` x `cols` tiles plus the global view (0, 0: the
    /// global view alone), each of `image_tokens` placeholders: the chat template's user turn
    /// with the image first, as SmolVLM's template writes it, then the instruction.
    pub fn render_tiled(&self, rows: usize, cols: usize, image_tokens: usize) -> String {
        format!(
            "{BEGIN}User:{}{}{END_OF_UTTERANCE}\nAssistant:",
            image_text(rows, cols, image_tokens),
            self.instruction()
        )
    }
}

impl Prompt {
    /// [`Self::render_tiled`] inside a checkpoint's own chat template when it has one.
    pub fn render_in(
        &self,
        chat: Option<&super::chat::ChatTemplate>,
        rows: usize,
        cols: usize,
        image_tokens: usize,
    ) -> Result<String> {
        match chat {
            Some(t) => t.render(self.instruction(), rows, cols, image_tokens),
            None => Ok(self.render_tiled(rows, cols, image_tokens)),
        }
    }
}

/// What the Idefics3 / SmolVLM processors put in place of an image: for each tile
/// `<fake_token_around_image><row_R_col_C>` and its placeholders, a newline after each row, then a
/// newline and the global view `<fake_token_around_image><global-img>…<fake_token_around_image>`.
pub fn image_text(rows: usize, cols: usize, image_tokens: usize) -> String {
    let placeholders = IMAGE_TOKEN.repeat(image_tokens);
    let mut text = String::new();
    for r in 1..=rows {
        for c in 1..=cols {
            text += &format!("{FAKE_TOKEN}<row_{r}_col_{c}>{placeholders}");
        }
        text.push('\n');
    }
    if rows > 0 || cols > 0 {
        text.push('\n');
    }
    text + &format!("{FAKE_TOKEN}{GLOBAL_IMG}{placeholders}{FAKE_TOKEN}")
}

/// The training target after the prompt: the answer and the end of the turn.
pub fn target(answer: &str) -> String {
    format!("{answer}{END_OF_UTTERANCE}")
}

/// Words of the findings: a phrase with none of them that names a structure asks for anatomy.
const FINDING_WORDS: [&str; 16] = [
    "effusion",
    "pneumothorax",
    "opacit",
    "consolidat",
    "atelecta",
    "edema",
    "oedema",
    "cardiomegaly",
    "enlarge",
    "pneumonia",
    "nodul",
    "mass",
    "infiltrat",
    "fluid",
    "collapse",
    "lesion",
];
const ANATOMY_WORDS: [&str; 12] = [
    "heart",
    "lung",
    "lobe",
    "trachea",
    "diaphragm",
    "costophrenic",
    "mediastin",
    "aort",
    "hilum",
    "hilar",
    "apex",
    "cardiac silhouette",
];

/// Whether a phrase asks for a structure of normal anatomy rather than a finding.
pub fn is_anatomy(phrase: &str) -> bool {
    let p = phrase.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| p.contains(w));
    has(&ANATOMY_WORDS) && !has(&FINDING_WORDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anatomy_phrases_are_told_from_findings() {
        for p in [
            "the heart",
            "The right lung",
            "the left hemidiaphragm",
            "the trachea",
        ] {
            assert!(is_anatomy(p), "{p}");
        }
        for p in [
            "small left pleural effusion",
            "right apical pneumothorax",
            "enlarged cardiac silhouette",
            "opacity in the right lower lobe",
            "a cat",
        ] {
            assert!(!is_anatomy(p), "{p}");
        }
    }

    #[test]
    fn renders_the_paper_prompt() {
        let p = Prompt::new("  small left\tpleural effusion ", 0).unwrap();
        assert_eq!(
            p.instruction(),
            "[refer] give me the location of small left pleural effusion"
        );
        let text = p.render(2);
        assert!(text.starts_with("<|im_start|>User:<fake_token_around_image><global-img><image><image><fake_token_around_image>[refer] give me"));
        assert!(text.ends_with("effusion<end_of_utterance>\nAssistant:"));
        assert_eq!(
            Prompt::new("x", 5).unwrap().instruction(),
            "[refer] where can I locate the x ?"
        );
    }

    #[test]
    fn lays_out_tiles_as_the_processor() {
        let f = "<fake_token_around_image>";
        assert_eq!(
            image_text(1, 2, 1),
            format!("{f}<row_1_col_1><image>{f}<row_1_col_2><image>\n\n{f}<global-img><image>{f}")
        );
        let t = Prompt::new("x", 0).unwrap().render_tiled(2, 1, 2);
        assert!(t.starts_with(&format!(
            "<|im_start|>User:{f}<row_1_col_1><image><image>\n{f}<row_2_col_1>"
        )));
        assert_eq!(t.matches("<image>").count(), 6);
    }

    #[test]
    fn rejects_bad_phrases() {
        assert!(matches!(Prompt::new(" \n ", 0), Err(Error::Phrase(_))));
        assert!(Prompt::new(&"a".repeat(MAX_PHRASE_CHARS + 1), 0).is_err());
        assert!(Prompt::new("effusion\u{7}", 0).is_err());
        assert!(Prompt::new("effusion", 6).is_err());
        assert!(Prompt::new(&"é".repeat(MAX_PHRASE_CHARS), 0).is_ok());
    }
}

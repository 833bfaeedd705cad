//! A checkpoint's own chat template (Jinja, as transformers renders it with `apply_chat_template`):
//! the user turn with the image first and the instruction, then the generation prompt. The
//! rendered `<image>` is then expanded into the tiles' placeholders, as the Idefics3 / SmolVLM
//! processors do. Without a template medground writes SmolVLM's layout itself
//! ([`super::prompt::Prompt::render_tiled`]).

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, context};

use super::prompt::{IMAGE_TOKEN, image_text};
use crate::error::{Error, Result};

/// Where checkpoints keep the template: its own file (newer transformers), a JSON file holding
/// it, or a key of the processor's or tokenizer's config.
pub const FILES: [&str; 4] = [
    "chat_template.jinja",
    "chat_template.json",
    "processor_config.json",
    "tokenizer_config.json",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplate {
    source: String,
    /// Where it was found, for messages.
    from: &'static str,
}

impl ChatTemplate {
    /// The first template found among a checkpoint's files (see [`FILES`]); None when it has none.
    /// A template that does not render the user turn with exactly one image is an error.
    pub fn find(files: &BTreeMap<String, Vec<u8>>) -> Result<Option<Self>> {
        for name in FILES {
            let Some(bytes) = files.get(name) else {
                continue;
            };
            let bad = |m: String| Error::Config(format!("{name}: {m}"));
            let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
            let source = if name.ends_with(".jinja") {
                Some(text.to_string())
            } else {
                let v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
                match v.get("chat_template") {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    None | Some(serde_json::Value::Null) => None,
                    Some(_) => return Err(bad("chat_template is not one template".into())),
                }
            };
            if let Some(source) = source {
                let t = Self { source, from: name };
                t.user_turn("[refer] check")?;
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The checkpoint file it came from.
    pub fn file(&self) -> &'static str {
        self.from
    }

    /// The rendered user turn (one image, then `instruction`) and the generation prompt, with one
    /// `<image>` where the image goes.
    pub fn user_turn(&self, instruction: &str) -> Result<String> {
        let bad = |m: String| Error::Config(format!("the chat template in {}: {m}", self.from));
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |m: String| -> std::result::Result<String, _> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, m))
            },
        );
        env.add_template("chat", &self.source)
            .map_err(|e| bad(e.to_string()))?;
        let messages = serde_json::json!([{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": instruction}]}]);
        let text = env
            .get_template("chat")
            .and_then(|t| {
                t.render(context! {
                    messages => minijinja::Value::from_serialize(&messages),
                    add_generation_prompt => true,
                    bos_token => "<|begin_of_text|>",
                    eos_token => "<end_of_utterance>",
                })
            })
            .map_err(|e| bad(e.to_string()))?;
        if text.matches(IMAGE_TOKEN).count() != 1 {
            return Err(bad(format!(
                "it should place one {IMAGE_TOKEN} for the image, it placed {}",
                text.matches(IMAGE_TOKEN).count()
            )));
        }
        Ok(text)
    }

    /// The full text for an image of `rows` x `cols` tiles (0, 0: the global view alone).
    pub fn render(
        &self,
        instruction: &str,
        rows: usize,
        cols: usize,
        image_tokens: usize,
    ) -> Result<String> {
        Ok(self.user_turn(instruction)?.replacen(
            IMAGE_TOKEN,
            &image_text(rows, cols, image_tokens),
            1,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Prompt;

    /// SmolVLM's template (transformers' `processing_smolvlm.DEFAULT_CHAT_TEMPLATE`).
    const SMOLVLM: &str = "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'] is string %}{{': ' + message['content']}}{% else %}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

    fn files(name: &str, text: String) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(name.to_string(), text.into_bytes())])
    }

    #[test]
    fn smolvlm_template_renders_what_medground_writes_itself() {
        let json = serde_json::json!({ "chat_template": SMOLVLM }).to_string();
        for (name, text) in [
            ("chat_template.jinja", SMOLVLM.to_string()),
            ("chat_template.json", json),
        ] {
            let t = ChatTemplate::find(&files(name, text)).unwrap().unwrap();
            let p = Prompt::new("small left pleural effusion", 0).unwrap();
            assert_eq!(
                t.render(p.instruction(), 2, 1, 3).unwrap(),
                p.render_tiled(2, 1, 3)
            );
        }
        assert_eq!(ChatTemplate::find(&BTreeMap::new()).unwrap(), None);
        let no_key = files(
            "tokenizer_config.json",
            "{\"model_max_length\": 8192}".into(),
        );
        assert_eq!(ChatTemplate::find(&no_key).unwrap(), None);
    }

    #[test]
    fn python_methods_work_and_broken_templates_are_named() {
        // Idefics3's style: a Python string method inside the template.
        let t = "<|begin_of_text|>{% for m in messages %}{{ m['role'].capitalize() }}:{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";
        let t = ChatTemplate::find(&files("chat_template.jinja", t.into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            t.user_turn("x").unwrap(),
            "<|begin_of_text|>User:<image>x<end_of_utterance>\nAssistant:"
        );
        for (bad, named) in [
            ("{% for %}", "chat_template.jinja"),
            ("{{ raise_exception('no images here') }}", "no images here"),
            ("User: hello", "one <image>"),
        ] {
            let err = ChatTemplate::find(&files("chat_template.jinja", bad.into())).unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
    }
}

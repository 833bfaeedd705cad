"""PEFT round trip at SmolVLM's structure, both ways, on the structure fixture's model.

Python to medground: PEFT trains a LoRA adapter (r 8, alpha 16 on the text model's q_proj and
v_proj, given as PEFT's regular expression, the connector trained through modules_to_save; eight
AdamW steps on the tall image and a box answer) and saves it to tests/fixtures/structure/peft/.
medground to Python: PEFT loads medground's own stage-2 adapter, tests/fixtures/structure/ours/,
written by
    cargo run --release -- train --preset stage2 --base tests/fixtures/structure --steps 6 \
        --out runs/structure-adapter --eval synth:4:test
    cp runs/structure-adapter/adapter/* tests/fixtures/structure/ours/
For both, what transformers + PEFT computes on the tall image through the processor (PEFT's own
forward, not merged): logits in expected_peft.safetensors, greedy tokens in expected_peft.json.
`tests/structure.rs` merges each adapter with `import-peft`'s code and requires the same.

Regenerate after make_structure_fixture.py (reference tooling only, not part of CI):
    .venv/bin/python tools/reference/make_peft_fixture.py
"""

import json

import torch
from PIL import Image
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import Idefics3ForConditionalGeneration, PreTrainedTokenizerFast
from transformers.models.idefics3 import Idefics3Processor
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE
from make_structure_fixture import OUT, PHRASE, SEQ, GREEDY

ANSWER = "{<7><13><100><99>}<end_of_utterance>"


def tall_inputs():
    tok = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"))
    pre = json.loads((OUT / "preprocessor_config.json").read_text())
    settings = {k: v for k, v in pre.items() if k not in ("image_processor_type", "processor_class")}
    proc = Idefics3Processor(Idefics3ImageProcessorPil(**settings), tok, image_seq_len=SEQ,
                             chat_template=DEFAULT_CHAT_TEMPLATE)
    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"[refer] give me the location of {PHRASE}"}]}]
    chat = proc.apply_chat_template(messages, add_generation_prompt=True)
    return tok, proc(text=chat, images=[Image.open(OUT / "tall.png")], return_tensors="pt")


def base():
    return Idefics3ForConditionalGeneration.from_pretrained(OUT, torch_dtype=torch.float32).eval()


def outputs(model, inputs):
    with torch.no_grad():
        logits = model(**inputs).logits
        gen = model.generate(**inputs, max_new_tokens=GREEDY, min_new_tokens=GREEDY,
                             do_sample=False, pad_token_id=0)
    return logits.float().contiguous(), gen[0, inputs["input_ids"].shape[1]:].tolist()


def train_peft(tok, inputs):
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                        target_modules=r".*text_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
                        modules_to_save=["modality_projection"])
    model = get_peft_model(base(), config)
    answer = tok(ANSWER, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([inputs["input_ids"], answer], dim=1)
    labels = ids.clone()
    labels[:, :inputs["input_ids"].shape[1]] = -100
    batch = {**inputs, "input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(8):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(round(loss.item(), 4))
    model.eval()
    model.save_pretrained(OUT / "peft")
    (OUT / "peft" / "README.md").unlink()  # PEFT's model card template
    path = OUT / "peft" / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = "tests/fixtures/structure"  # not this machine's path
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return model, losses


def main():
    torch.manual_seed(0)
    tok, inputs = tall_inputs()
    peft_model, losses = train_peft(tok, inputs)
    expected, tensors = {"answer": ANSWER, "peft_losses": losses}, {}
    for name, model in [("peft", peft_model), ("ours", PeftModel.from_pretrained(base(), OUT / "ours"))]:
        logits, tokens = outputs(model, inputs)
        tensors[f"{name}.logits"] = logits
        expected[f"{name}_greedy_tokens"] = tokens
    base_logits, _ = outputs(base(), inputs)
    expected["largest_change"] = {n: float((tensors[f"{n}.logits"] - base_logits).abs().max())
                                  for n in ["peft", "ours"]}
    save_file(tensors, str(OUT / "expected_peft.safetensors"))
    (OUT / "expected_peft.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(json.dumps(expected))


if __name__ == "__main__":
    main()

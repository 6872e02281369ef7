"""Learning-signal probe for the tiny base (issue 12): does a tiny Qwen2.5-VL form the copy (induction) and the
option-letter binding mechanisms, and when? A plain torch loop on text only, next-token loss on every token, so one
probe takes minutes on one core instead of a full `vst train base` run.

    python benchmarks/binding_probe.py --steps 2000 --induction 0.5                  # repeated random sequences
    python benchmarks/binding_probe.py --steps 3000 --binding 0.5                    # dense "A. x ... x A" lookups
    python benchmarks/binding_probe.py --steps 3000 --binding 0.5 --after            # value after key: "x A ... x A"
    python benchmarks/binding_probe.py --steps 2000 --induction 0.5 --shuffled      # copying by content only
    python benchmarks/binding_probe.py --rope-theta 1e4 --size medium --lr 2e-3 --batch 32

The batch mixes (a) `induction`: k random vocabulary tokens repeated (the second copy is predictable only by
copying), (b) `binding`: an option list of k random tokens with letters, then every token asked once with its letter
after it (predictable only by looking the token up), and (c) the rest: vst.data.pretrain's "Which option says X?"
items in the chat template. Every 100 steps it prints one JSON line: mean loss, accuracy on 300 held-out option_says
items (the answer letter as the next token; chance is about 36 %) and on the letters of 200 held-out binding lists
(answering by elimination alone gives about 40 %).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from vst.data import pretrain
from vst.models import tiny

CHAT = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def _factors(d: int, rank: int, alpha: float, beta: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B), each rank x d, with A^T B the best rank-`rank` approximation of alpha Z + beta I, Z ~ N(0, 1/d)."""
    m = alpha * torch.randn(d, d, generator=generator) / d**0.5 + beta * torch.eye(d)
    u, s, vh = torch.linalg.svd(m)
    root = s[:rank].sqrt()[:, None]
    return root * u[:, :rank].T, root * vh[:rank]


@torch.no_grad()
def mimetic_init(model, qk: tuple[float, float] | None, vo: tuple[float, float] | None, seed: int = 0) -> None:
    """Mimetic initialisation of the language model's attention (Trockman & Kolter, "Mimetic Initialization of
    Self-Attention Layers", ICML 2023): heads sharing a key/value head (GQA) share its factors."""
    generator = torch.Generator().manual_seed(seed)
    text = model.config.text_config
    d, heads, kv = text.hidden_size, text.num_attention_heads, text.num_key_value_heads
    hd, group = d // heads, heads // kv
    for layer in model.model.language_model.layers:
        attn = layer.self_attn
        for g in range(kv):
            if qk:
                a, b = _factors(d, hd, *qk, generator)
                attn.k_proj.weight[g * hd:(g + 1) * hd] = b
                attn.k_proj.bias[g * hd:(g + 1) * hd] = 0
                for h in range(g * group, (g + 1) * group):
                    attn.q_proj.weight[h * hd:(h + 1) * hd] = a
                    attn.q_proj.bias[h * hd:(h + 1) * hd] = 0
            if vo:
                a, b = _factors(d, hd, *vo, generator)  # W_o_h W_v = a^T b: o columns a^T, v rows b
                attn.v_proj.weight[g * hd:(g + 1) * hd] = b
                attn.v_proj.bias[g * hd:(g + 1) * hd] = 0
                for h in range(g * group, (g + 1) * group):
                    attn.o_proj.weight[:, h * hd:(h + 1) * hd] = a.T / group


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", default="medium", choices=sorted(tiny.SIZES))
    parser.add_argument("--rope-theta", type=float, default=1e6)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--induction", type=float, default=0.0, help="Fraction of each batch of repeated sequences.")
    parser.add_argument("--binding", type=float, default=0.0, help="Fraction of each batch of dense binding lists.")
    parser.add_argument("--after", action="store_true", help="Binding lists with the letter after the token.")
    parser.add_argument("--shuffled", action="store_true",
                        help="Induction sequences repeated as (token, its successor) pairs in random order: copying "
                             "by content only, no fixed offset back to the first copy.")
    parser.add_argument("--samples", type=int, default=40_000, help="option_says items to draw from.")
    parser.add_argument("--heads", type=int, default=None, help="Attention heads (head_dim = hidden / heads).")
    parser.add_argument("--kv-heads", type=int, default=None, help="Key/value heads (GQA groups).")
    parser.add_argument("--mimetic", type=float, nargs=2, default=None, metavar=("ALPHA", "BETA"),
                        help="Mimetic initialisation of every attention layer (Trockman & Kolter 2023): per head "
                             "W_q^T W_k ~ ALPHA Z + BETA I, so attention matches tokens by content from step 0.")
    parser.add_argument("--mimetic-vo", type=float, nargs=2, default=None, metavar=("ALPHA", "BETA"),
                        help="Also W_o W_v ~ ALPHA Z + BETA I per head (BETA > 0: heads copy what they attend to).")
    parser.add_argument("--tied", action="store_true",
                        help="Tie the output layer to the input embeddings (as Qwen2.5-VL-3B does).")
    parser.add_argument("--pool", type=int, default=None,
                        help="Draw the random tokens of the induction and binding sequences from this many tokens only "
                             "(a name vocabulary small enough that every embedding is trained often).")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tokenizer = tiny.build_tokenizer(2048, pretrain.tokenizer_corpus())
    dims = dataclasses.replace(tiny.SIZES[args.size], vocab=2048)
    if args.heads:
        dims = dataclasses.replace(dims, text_heads=args.heads, text_kv_heads=args.kv_heads or args.heads)
    config = tiny.build_config(tokenizer, dims)
    config.text_config.rope_parameters["rope_theta"] = args.rope_theta
    config.tie_word_embeddings = config.text_config.tie_word_embeddings = args.tied
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config)
    if args.mimetic or args.mimetic_vo:
        mimetic_init(model, args.mimetic, args.mimetic_vo)
    pad = tokenizer.pad_token_id
    special = set(tokenizer.all_special_ids)
    ordinary = np.array([i for i in range(len(tokenizer)) if i not in special and i > 300])
    if args.pool:
        ordinary = np.sort(np.random.default_rng(1).choice(ordinary, size=args.pool, replace=False))
    letters = [tokenizer.convert_tokens_to_ids(c) for c in "ABCDEFGH"]
    dot, newline = tokenizer(".")["input_ids"], tokenizer("\n")["input_ids"]

    def says(n: int, seed: int) -> list[list[int]]:
        tasks = {"option_says": (pretrain.option_says, 1.0)}
        return [tokenizer(CHAT.format(q=s.conversations[0].value))["input_ids"]
                + tokenizer(s.conversations[1].value + "<|im_end|>")["input_ids"]
                for s in pretrain.generate(n, seed, pretrain.Context(), tasks=tasks)]

    def induction(rng) -> list[int]:
        k = int(rng.integers(8, 25))
        seq = [int(x) for x in rng.choice(ordinary, size=k, replace=not args.shuffled)]
        if args.shuffled:  # each successor is found by looking its token up, at no fixed distance
            return seq + [token for i in rng.permutation(k - 1) for token in (seq[i], seq[i + 1])]
        return seq + seq + seq[: int(rng.integers(1, k + 1))]

    def binding(rng) -> tuple[list[int], list[int]]:
        """(tokens, positions of the letters to be predicted by lookup)."""
        k = int(rng.integers(2, 9))
        names = [int(x) for x in rng.choice(ordinary, size=k, replace=False)]
        seq = []
        for i, name in enumerate(names):
            seq += [name, letters[i]] + newline if args.after else [letters[i]] + dot + [name] + newline
        asked = []
        for i in rng.permutation(k):
            seq += [names[i], letters[i]]
            asked.append(len(seq) - 1)
        return seq, asked

    def batch_of(sequences: list[list[int]]):
        width = max(map(len, sequences))
        ids = torch.full((len(sequences), width), pad)
        labels = torch.full((len(sequences), width), -100)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
            labels[row, 1 : len(seq)] = torch.tensor(seq[1:])
        return ids, labels, mask

    train = says(args.samples, 1)
    held_says = says(300, 99)
    held_binding = [binding(np.random.default_rng(10_000 + i)) for i in range(200)]

    @torch.no_grad()
    def accuracy() -> tuple[float, float]:
        model.eval()
        ids, _, mask = batch_of([seq[:-2] for seq in held_says])  # up to the answer letter (letter, <|im_end|>)
        # right-padded: read the logits at each row's last real position
        logits = model(input_ids=ids, attention_mask=mask).logits
        last = mask.sum(1) - 1
        predicted = logits[torch.arange(len(held_says)), last].argmax(-1)
        says_acc = float(np.mean([int(predicted[i]) == seq[-2] for i, seq in enumerate(held_says)]))
        ids, _, mask = batch_of([seq for seq, _ in held_binding])
        predicted = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
        hits = [int(predicted[row, pos - 1]) == seq[pos] for row, (seq, asked) in enumerate(held_binding) for pos in asked]
        model.train()
        return says_acc, float(np.mean(hits))

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 50))
    rng, losses, started = np.random.default_rng(0), [], time.time()
    model.train()
    for step in range(1, args.steps + 1):
        sequences = []
        for _ in range(args.batch):
            u = rng.random()
            if u < args.induction:
                sequences.append(induction(rng))
            elif u < args.induction + args.binding:
                sequences.append(binding(rng)[0])
            else:
                sequences.append(train[int(rng.integers(len(train)))])
        ids, labels, mask = batch_of(sequences)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % 100 == 0:
            says_acc, binding_acc = accuracy()
            print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-100:])), 4), "option_says": says_acc,
                              "binding": round(binding_acc, 3), "s": round(time.time() - started)}), flush=True)


if __name__ == "__main__":
    main()

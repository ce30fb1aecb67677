#!/usr/bin/python3
"""A closed Spectrum loop on a tiny Llama-style model, pure PyTorch.

    train_loop.py base --out runs/base --steps 400
    train_loop.py finetune --init runs/base/checkpoint-400 --out runs/ft \\
        --mode dynamic --daemon http://127.0.0.1:8420 --run ft

The model is a small decoder (RMSNorm, rotary positions, SwiGLU MLP, tied
nothing) whose parameter names are Hugging Face Llama's
(model.embed_tokens.weight, model.layers.N.self_attn.{q,k,v,o}_proj.weight,
model.layers.N.mlp.{gate,up,down}_proj.weight, ...input_layernorm.weight,
...post_attention_layernorm.weight, model.norm.weight, lm_head.weight). The
tokenizer is bytes (vocab 256). Text comes from Debian: the base domain is
manual page sources (/usr/share/man/man1/*.gz, troff), the fine-tuning
domain is the license texts in /usr/share/common-licenses; each domain's
held-out part is the last 10 % of every file.

Checkpoints are laid out as the HF Trainer does: <out>/checkpoint-<step>/
with model.safetensors (written here, F32 or BF16), config.json, and
trainer_state.json (global_step, log_history) written LAST, so spectrumd
--watch NAME=<out> analyses them like any run.

finetune --mode:
  full     every parameter trains;
  static   the set is the daemon's /selection of --static-run (the base
           model's run), fetched once before training;
  dynamic  the loop writes checkpoint-<init step> (the initial weights)
           first, waits for the daemon to analyse it, applies /selection of
           --run, and after every later save waits for that checkpoint's
           analysis and applies the (possibly new) set: frozen parameters
           leave the AdamW optimizer, unfrozen ones join it, staying ones
           keep their moments (spectrum_optim.OptimizerSync);
  random   per type, the same count the daemon would keep
           (floor(n * p / 100)), chosen at random (--seed), plus embed_tokens
           and lm_head as the daemon includes them by default.
--lr-scales FILE (JSON parameter name -> multiplier) scales each named
parameter's learning rate through its own optimizer param group
(spectrum_optim.OptimizerSync); --lr-scales daemon (static and dynamic
modes) fetches GET /lr_scales of the same run and version as the applied
/selection at every application instead, so the SNR-guided scales follow
each re-selection (a module's multiplier applies to all its parameters).

--result FILE writes a JSON summary: eval losses per save, wall time,
tokens/s, peak RSS, trainable parameters per save, churn per save.
"""

import argparse
import glob
import gzip
import json
import math
import os
import random
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spectrum_client import SpectrumClient, apply, scales_for  # noqa: E402
from spectrum_optim import OptimizerSync  # noqa: E402

TYPES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
         "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


# --- data -----------------------------------------------------------------

def _read_texts(domain, max_bytes):
    """(train bytes, held-out bytes) of a domain, deterministic."""
    if domain == "licenses":
        files = sorted(set(os.path.realpath(f) for f in
                           glob.glob("/usr/share/common-licenses/*")))
        blobs = [open(f, "rb").read() for f in files if os.path.isfile(f)]
    elif domain == "man":
        files = sorted(glob.glob("/usr/share/man/man1/*.gz"))
        rng = random.Random(1234)
        rng.shuffle(files)
        blobs, n = [], 0
        for f in files:
            try:
                b = gzip.open(f).read()
            except OSError:
                continue
            if b.startswith(b".so ") or len(b) < 2000:
                continue        # links to other pages, stubs
            blobs.append(b[:40000])
            n += len(blobs[-1])
            if n >= max_bytes:
                break
        if n < 200000:  # man pages excluded (minimal images): package docs
            print("train_loop: few manual pages; using "
                  "/usr/share/doc/*/copyright instead", file=sys.stderr)
            return _read_texts("doc", max_bytes)
    elif domain == "doc":
        blobs, n = [], 0
        for f in sorted(glob.glob("/usr/share/doc/*/copyright")):
            blobs.append(open(f, "rb").read())
            n += len(blobs[-1])
            if n >= max_bytes:
                break
    else:
        raise ValueError("unknown domain %r" % domain)
    tr, ho = bytearray(), bytearray()
    for b in blobs:
        cut = len(b) * 9 // 10
        tr += b[:cut]
        ho += b[cut:]
    if not tr:
        raise SystemExit("train_loop: no text for domain %s" % domain)
    return bytes(tr), bytes(ho)


def load_domain(domain, max_bytes=3_000_000):
    tr, ho = _read_texts(domain, max_bytes)
    t = torch.frombuffer(bytearray(tr), dtype=torch.uint8).long()
    h = torch.frombuffer(bytearray(ho), dtype=torch.uint8).long()
    return t, h


def batch(data, bs, seq, gen):
    ix = torch.randint(0, len(data) - seq - 1, (bs,), generator=gen)
    x = torch.stack([data[i:i + seq] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + seq + 1] for i in ix.tolist()])
    return x, y


# --- model ----------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(
            x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotary(x, cos, sin):
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos),
                       -1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.nh = cfg["hidden_size"], cfg["num_attention_heads"]
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        n = cfg["max_position_embeddings"]
        self.register_buffer("mask", torch.ones(n, n, dtype=torch.bool)
                             .triu(1), persistent=False)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        hd = d // self.nh

        def heads(z):
            return z.view(b, t, self.nh, hd).transpose(1, 2)
        q = rotary(heads(self.q_proj(x)), cos, sin)
        k = rotary(heads(self.k_proj(x)), cos, sin)
        v = heads(self.v_proj(x))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(self.mask[:t, :t], float("-inf"))
        y = att.softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"],
                                         cfg["hidden_size"])
        self.layers = nn.ModuleList(Layer(cfg)
                                    for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"])


class LlamaForCausalLM(nn.Module):
    """Parameter names as transformers' LlamaForCausalLM."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"],
                                 bias=False)
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float()
                                           / hd))
        ang = torch.outer(torch.arange(cfg["max_position_embeddings"]).float(),
                          inv)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        for n, p in self.named_parameters():
            if p.ndim == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.model.embed_tokens(idx)
        for layer in self.model.layers:
            x = layer(x, self.cos[:t], self.sin[:t])
        return self.lm_head(self.model.norm(x))


def config(args):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": 256, "hidden_size": args.hidden,
            "intermediate_size": args.intermediate,
            "num_hidden_layers": args.layers,
            "num_attention_heads": args.heads,
            "num_key_value_heads": args.heads,
            "max_position_embeddings": args.seq, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": False, "torch_dtype": args.dtype}


# --- safetensors (our own few lines) ---------------------------------------

_ST = {torch.float32: "F32", torch.bfloat16: "BF16"}
_TORCH = {v: k for k, v in _ST.items()}


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as safetensors: u64 LE header length, JSON
    header (dtype, shape, data_offsets), padded with spaces to 8 bytes,
    then the raw little-endian data in header order."""
    hdr, blobs, off = {}, [], 0
    if metadata:
        hdr["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        hdr[name] = {"dtype": _ST[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """{name: tensor} of a safetensors file (F32/BF16)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in hdr.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.uint8)
        out[name] = t.view(_TORCH[v["dtype"]]).reshape(v["shape"])
    return out


def write_checkpoint(out, step, model, cfg, state, dtype):
    """checkpoint-<step>/ as the HF Trainer lays it out; trainer_state.json
    last (the daemon's completeness signal)."""
    d = os.path.join(out, "checkpoint-%d" % step)
    os.makedirs(d, exist_ok=True)
    dt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    save_safetensors(os.path.join(d, "model.safetensors"),
                     {n: p.detach().to(dt) for n, p in
                      model.named_parameters()}, {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    st = dict(state, global_step=step)
    tmp = os.path.join(d, ".trainer_state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(st, f, indent=2)
    os.replace(tmp, os.path.join(d, "trainer_state.json"))
    return d


# --- training -------------------------------------------------------------

@torch.no_grad()
def evaluate(model, data, seq, n_batches=8, bs=16):
    model.eval()
    gen = torch.Generator().manual_seed(999)
    tot = 0.0
    for _ in range(n_batches):
        x, y = batch(data, bs, seq, gen)
        tot += F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    model.train()
    return tot / n_batches


def lr_at(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_set(model, top_percent, seed, include_embeddings=True):
    """Per type, floor(n*p/100) random modules (the daemon's count)."""
    rng = random.Random(seed)
    names = [n for n, _ in model.named_parameters()]
    out = []
    for ty in TYPES:
        mods = [n for n in names if n.endswith("." + ty + ".weight")]
        k = len(mods) * top_percent // 100
        out += rng.sample(mods, k)
    if include_embeddings:
        out += ["model.embed_tokens.weight", "lm_head.weight"]
    return [n for n in names if n in set(out)]


class Loop:
    """The daemon side of a finetune: which set to train at each save."""

    def __init__(self, args, model):
        self.args = args
        self.model = model
        self.client = None
        self.wait_s = 0.0
        self.lr_answer = None
        if args.mode in ("static", "dynamic"):
            run = args.static_run if args.mode == "static" else args.run
            self.client = SpectrumClient(args.daemon, run=run,
                                         top_percent=args.top_percent)

    def _checkpoints_done(self, step):
        import urllib.request
        import urllib.parse
        url = "%s/checkpoints?run=%s" % (self.args.daemon.rstrip("/"),
                                          urllib.parse.quote(self.args.run))
        with urllib.request.urlopen(url, timeout=10) as r:
            cps = json.loads(r.read())
        for c in cps:
            if c.get("step") == step and c.get("status") in (
                    "done", "error", "unsupported"):
                return c["status"]
        return None

    def wait_analysed(self, step, timeout=120):
        """Blocks until the daemon finished the checkpoint of step."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            st = self._checkpoints_done(step)
            if st == "done":
                self.wait_s += time.monotonic() - t0
                return
            if st is not None:
                raise SystemExit("train_loop: checkpoint %d: %s" % (step, st))
            time.sleep(0.05)
        raise SystemExit("train_loop: checkpoint %d not analysed in %d s"
                         % (step, timeout))

    def names(self):
        """The current set (parameter names), fetching when needed."""
        a = self.args
        allnames = [n for n, _ in self.model.named_parameters()]
        if a.mode == "full":
            return allnames
        if a.mode == "random":
            return random_set(self.model, a.top_percent, a.seed)
        t0 = time.monotonic()
        self.client.selection()         # If-None-Match: None when unchanged
        self.wait_s += time.monotonic() - t0
        if self.client.current is None:
            raise SystemExit("train_loop: the daemon has no selection")
        return apply(allnames, self.client.current)

    def names_and_scales(self, file_scales):
        """(names, {name: LR multiplier} or None): the current set, and
        with --lr-scales daemon the /lr_scales of the same selection
        version (kept in .lr_answer), else file_scales."""
        for _ in range(5):
            names = self.names()
            if self.args.lr_scales != "daemon":
                return names, file_scales
            t0 = time.monotonic()
            lr = self.client.lr_scales()
            self.wait_s += time.monotonic() - t0
            if lr.get("version") == self.client.current.get("version"):
                self.lr_answer = lr
                return names, scales_for(names, lr)
            # A newer checkpoint was analysed in between: follow it.
        raise SystemExit("train_loop: /lr_scales and /selection keep "
                         "disagreeing on the version")


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cfg = config(args)
    model = LlamaForCausalLM(cfg)
    init_step = 0
    if args.init:
        w = load_safetensors(os.path.join(args.init, "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in w.items()},
                              strict=False)
        with open(os.path.join(args.init, "trainer_state.json")) as f:
            init_step = json.load(f)["global_step"]
    domain = args.domain or ("man" if args.cmd == "base" else "licenses")
    train_data, held = load_domain(domain)
    other = None
    if args.cmd == "finetune":
        other = load_domain("man" if domain != "man" else "licenses")[1]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    sync = OptimizerSync(opt)
    scales = None
    if args.lr_scales and args.lr_scales != "daemon":
        with open(args.lr_scales) as f:
            scales = json.load(f)
    loop = Loop(args, model) if args.cmd == "finetune" else None
    os.makedirs(args.out, exist_ok=True)
    state = {"log_history": [], "epoch": 0.0, "max_steps": args.steps,
             "logging_steps": args.log_every, "save_steps": args.save_every,
             "train_batch_size": args.batch, "is_world_process_zero": True}
    res = {"mode": args.mode if loop else "base", "saves": []}
    tokens_per_epoch = len(train_data)
    step = init_step
    last = None

    def sizes():
        return {n: p.numel() for n, p in model.named_parameters()}

    def apply_set(step):
        nonlocal last
        if loop:
            names, sc = loop.names_and_scales(scales)
        else:
            names, sc = [n for n, _ in model.named_parameters()], scales
        rep = sync.apply(model, names, sc)
        mods = set(n[:-len(".weight")] for n in names)
        churn = None if last is None else len(mods ^ last)
        last = mods
        return rep, churn

    def record(step, trained, loss, lo, applied, churn):
        """One save: the set trained up to it and the one applied after."""
        sel = loop.client.current if loop and loop.client else None
        s = {"step": step, "eval_loss": loss, "other_eval_loss": lo,
             "trained": trained, "churn": churn,
             # what the optimizer holds and requires grad, not the wish
             "applied": [n for n in sync.trainable_names(model)
                         if dict(model.named_parameters())[n].requires_grad]
             if applied else None,
             "trainable": (applied or rep)["trainable_elements"],
             # each held parameter's group multiplier, when not 1
             "lr_scales": {n: x for n, x in sync.scales(model).items()
                           if x != 1.0} if applied else None,
             "lr_scales_version": loop.lr_answer.get("version")
             if applied and loop and loop.lr_answer else None,
             "selection": None if sel is None or applied is None else
             {k: sel.get(k) for k in ("step", "version", "parameters",
                                     "patterns")}}
        res["saves"].append(s)
        print("step %5d eval %.4f%s trainable %d churn %s" % (
            step, loss, "" if lo is None else " (other %.4f)" % lo,
            s["trainable"], churn), file=sys.stderr, flush=True)

    rep, churn = None, None
    if loop:
        if args.mode == "dynamic":
            write_checkpoint(args.out, step, model, cfg, state, args.dtype)
            loop.wait_analysed(step)
        rep, churn = apply_set(step)
        record(step, None, evaluate(model, held, args.seq),
               evaluate(model, other, args.seq), rep, None)
    else:
        rep, _ = apply_set(step)
    total = sum(sizes().values())
    res["total_parameters"] = total
    gen = torch.Generator().manual_seed(args.seed + 1)
    t0 = time.monotonic()
    tokens = 0
    for i in range(args.steps):
        lr = lr_at(i, args.steps, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        x, y = batch(train_data, args.batch, args.seq, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
        opt.step()
        tokens += x.numel()
        step += 1
        state["epoch"] = tokens / tokens_per_epoch
        if step % args.log_every == 0:
            state["log_history"].append(
                {"loss": round(loss.item(), 4), "grad_norm": gn,
                 "learning_rate": lr, "epoch": state["epoch"], "step": step})
        if (i + 1) % args.save_every == 0 or i + 1 == args.steps:
            le = evaluate(model, held, args.seq)
            lo = evaluate(model, other, args.seq) if other is not None \
                else None
            write_checkpoint(args.out, step, model, cfg,
                             dict(state, log_history=state["log_history"] + [
                                 {"eval_loss": le, "epoch": state["epoch"],
                                  "step": step}]), args.dtype)
            trained = rep["trainable"]
            applied, churn = None, None
            if loop and args.mode == "dynamic" and i + 1 < args.steps:
                loop.wait_analysed(step)
                rep, churn = apply_set(step)
                applied = rep
            state["log_history"].append(
                {"eval_loss": le, "epoch": state["epoch"], "step": step})
            record(step, trained, le, lo, applied, churn)
    wall = time.monotonic() - t0
    res.update(wall_s=wall, tokens=tokens, tokens_per_s=tokens / wall,
               peak_rss_mib=peak_rss_mib(),
               daemon_wait_s=loop.wait_s if loop else 0.0,
               final_eval_loss=res["saves"][-1]["eval_loss"],
               optimizer_state_elements=sum(
                   v.numel() for st in opt.state.values()
                   for v in st.values() if torch.is_tensor(v)))
    if args.result:
        with open(args.result, "w") as f:
            json.dump(res, f, indent=1)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("base", "finetune"))
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--init", help="checkpoint directory to start from")
    ap.add_argument("--mode", default="full",
                    choices=("full", "static", "dynamic", "random"))
    ap.add_argument("--daemon", default="http://127.0.0.1:8420")
    ap.add_argument("--run", default="ft", help="this run's daemon name")
    ap.add_argument("--static-run", default="base",
                    help="the run whose selection static mode uses")
    ap.add_argument("--top-percent", type=int, default=25)
    ap.add_argument("--domain", choices=("man", "licenses", "doc"),
                    help="training text (default: man for base, "
                    "licenses for finetune)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--intermediate", type=int, default=344)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dtype", default="float32",
                    choices=("float32", "bfloat16"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr-scales", help="JSON file: name -> LR "
                    "multiplier, or 'daemon': the daemon's /lr_scales "
                    "at every application")
    ap.add_argument("--result", help="write a JSON summary here")
    a = ap.parse_args(argv)
    if a.cmd == "finetune" and not a.init:
        ap.error("finetune needs --init")
    if a.lr_scales == "daemon" and (a.cmd != "finetune" or a.mode not in
                                    ("static", "dynamic")):
        ap.error("--lr-scales daemon needs finetune --mode static or "
                 "dynamic")
    train(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Integration test: examples/hf_callback.py under real torch.distributed
(two CPU processes, gloo, loopback) against the real daemon. Only rank 0
may talk to the daemon (rank 1's client points at a closed port and fails
loudly if used); both ranks must apply the same selection version at the
same events, and that set must be /selection's. Prints TAP; skips without
torch.

Usage: ddp_it.py BUILDDIR [SRCDIR]
"""
import json
import logging
import os
import subprocess
import sys
import tempfile

BUILD = sys.argv[1] if len(sys.argv) > 1 else "."
SRC = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("top_srcdir", ".")
SPD = os.path.join(BUILD, "spectrumd")
FIX = os.path.join(BUILD, "tests", "spectrumd-fixture")
EXAMPLES = os.path.join(SRC, "examples")
sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, EXAMPLES)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spdtest  # noqa: E402
from spdtest import ok, wait_for  # noqa: E402

LAYERS = 8


def fixture(path, step, seed):
    subprocess.run([FIX, "checkpoint", path, "--layers", str(LAYERS),
                    "--hidden", "48", "--intermediate", "96", "--vocab", "128",
                    "--step", str(step), "--seed", str(seed), "-q"],
                   check=True)


def param_names():
    names = ["model.embed_tokens.weight", "lm_head.weight",
             "model.norm.weight"]
    for i in range(LAYERS):
        for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                  "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                  "mlp.down_proj"):
            names.append("model.layers.%d.%s.weight" % (i, m))
        names.append("model.layers.%d.input_layernorm.weight" % i)
    return names


class CheckpointSignal:
    """Rank 0 tells the parent a phase is reached and waits for its go."""

    def __init__(self, path):
        self.path = path

    def wait(self, name, timeout=60):
        return wait_for(lambda: os.path.exists(self.path + "." + name),
                        timeout=timeout, every=0.05)


def worker(rank, world, base, tmp):
    """One training process: a model of named parameters, the callback,
    train_begin, then (after the parent adds a checkpoint) save."""
    import torch
    import torch.distributed as dist
    import spectrum_client as scl
    import hf_callback as hfc

    # A file rendezvous: no port to pick (and race for); gloo binds its
    # own loopback sockets on ephemeral ports.
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method="file://" + os.path.join(
        tmp, "rendezvous"), rank=rank, world_size=world)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.ParameterDict()
            self.names = param_names()
            for i, _ in enumerate(self.names):
                self.p[str(i)] = torch.nn.Parameter(torch.zeros(2))

        def named_parameters(self, *a, **kw):
            return [(n, self.p[str(i)]) for i, n in enumerate(self.names)]

    class Refusing(scl.SpectrumClient):
        def selection(self, wait=0):
            raise AssertionError("rank %d must not call the daemon" % rank)

    client = (scl.SpectrumClient(base, run="demo") if rank == 0 else
              Refusing("http://127.0.0.1:1", run="demo"))
    cb = hfc.SpectrumCallback(client, logger=logging.getLogger("r%d" % rank),
                              apply_on=("train_begin", "save", "step_begin"),
                              poll_every_steps=5)
    model = Model()
    seen = []

    def record(tag):
        seen.append({"tag": tag, "version": cb.applied_version,
                     "trainable": sorted(n for n, p in model.named_parameters()
                                         if p.requires_grad)})

    cb.on_train_begin(None, None, None, model=model)
    record("train_begin")
    if rank == 0:
        open(os.path.join(tmp, "phase.begin"), "w").close()
    sig = CheckpointSignal(os.path.join(tmp, "go"))
    if rank == 0:
        sig.wait("save")
    dist.barrier()
    cb.on_save(None, None, None, model=model)
    record("save")

    class State:
        global_step = 0
    for step in (1, 2, 3, 4, 5):          # only step 5 polls, on both ranks
        State.global_step = step
        cb.on_step_begin(None, State, None, model=model)
    record("step_5")
    with open(os.path.join(tmp, "rank%d.json" % rank), "w") as f:
        json.dump(seen, f)
    dist.destroy_process_group()


def main():
    try:
        import torch.multiprocessing as mp
    except ImportError:
        print("1..0 # SKIP torch missing (Debian package python3-torch)")
        sys.exit(77)
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        os.makedirs(run)
        fixture(os.path.join(run, "checkpoint-10"), 10, seed=1)
        d = spdtest.Daemon(SPD, tmp, run)
        try:
            if not ok(d.port is not None, "daemon starts"):
                return
            ok(wait_for(lambda: d.obj("/selection") is not None, 30),
               "checkpoint-10 analysed")
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=worker, args=(r, 2, d.base, tmp),
                                 daemon=True) for r in (0, 1)]
            for p in procs:
                p.start()
            ok(wait_for(lambda: os.path.exists(
                os.path.join(tmp, "phase.begin")), 60),
               "both ranks applied the selection at train_begin")
            v1 = d.obj("/selection")
            fixture(os.path.join(run, "checkpoint-20"), 20, seed=99)
            ok(wait_for(lambda: (d.obj("/selection") or {}).get("step") == 20,
                        30), "checkpoint-20 analysed")
            v2 = d.obj("/selection")
            open(os.path.join(tmp, "go.save"), "w").close()
            for p in procs:
                p.join(120)
            for p in procs:             # a rank stuck in a collective
                if p.is_alive():
                    p.kill()
                    p.join()
            if not ok(all(p.exitcode == 0 for p in procs),
                      "both ranks exit 0 (rank 1 never called the daemon): "
                      "%s" % [p.exitcode for p in procs]):
                return
            seen = []
            for r in (0, 1):
                with open(os.path.join(tmp, "rank%d.json" % r)) as f:
                    seen.append(json.load(f))
            ok(seen[0] == seen[1],
               "rank 0 and rank 1 applied the same versions and sets at "
               "every event")
            want1 = sorted(v1["parameters"])
            want2 = sorted(v2["parameters"])
            ok(v1["version"] != v2["version"] and want1 != want2,
               "the new checkpoint changed the selection (v%d -> v%d)"
               % (v1["version"], v2["version"]))
            for tag, want, ver in (("train_begin", want1, v1["version"]),
                                   ("save", want2, v2["version"]),
                                   ("step_5", want2, v2["version"])):
                ev = [e for e in seen[1] if e["tag"] == tag]
                ok(ev and ev[0]["version"] == ver and
                   [n for n in ev[0]["trainable"] if n.endswith(".weight")]
                   == want, "%s: rank 1 trains /selection's v%d set "
                   "(%d parameters)" % (tag, ver, len(want)))
        finally:
            ok(d.stop() == 0, "daemon exits 0 on SIGTERM")


if __name__ == "__main__":
    main()
    spdtest.finish()

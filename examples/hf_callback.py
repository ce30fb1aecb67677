"""Hugging Face Trainer callback that freezes a model to spectrumd's
unfreeze set.

    from spectrum_client import SpectrumClient
    from hf_callback import SpectrumCallback
    cb = SpectrumCallback(SpectrumClient("http://127.0.0.1:8420", run="demo"))
    trainer = Trainer(model=model, args=args, ..., callbacks=[cb])

At on_train_begin it fetches the current selection and sets requires_grad
on every model.named_parameters() entry: True when one of the selection's
patterns matches the name (Axolotl's rules, see spectrum_client.matches),
False otherwise, and logs how many were unfrozen. At on_save (after the
checkpoint is written) and, if "step_begin" is in apply_on, at
on_step_begin (at most every poll_interval_s seconds) it asks the daemon
without blocking (wait=0) and re-applies when the version changed. A
daemon that cannot be reached or has no selection yet only logs a warning:
the model is left as it is.

THE OPTIMIZER holds only the parameters that had requires_grad=True when
it was built; requires_grad set later changes which gradients exist, not
what the optimizer updates. The HF Trainer builds its optimizer (keeping
only parameters with requires_grad) and loads optimizer.pt on resume
BEFORE on_train_begin, and passes it to callbacks. So, with
sync_optimizer=True (the default), each application also edits that
optimizer in place through spectrum_optim.OptimizerSync:
  - newly FROZEN parameters leave their param group and their state (Adam
    moments) is dropped, freeing its memory;
  - newly UNFROZEN parameters join their home group (the group they were
    in when the callback first saw the optimizer, else the weight-decay
    group for matrices and the no-decay group for vectors, as the Trainer
    splits them) with fresh state, so they ARE updated, and the LR
    scheduler drives them (no group is added);
  - parameters that stay keep their state untouched.
This needs a torch.optim-style optimizer (param_groups plus a per-
parameter .state dict; accelerate's AcceleratedOptimizer is unwrapped).
Without one (no optimizer passed, DeepSpeed's flattened groups, a custom
object), or with sync_optimizer=False, only requires_grad changes: then
newly frozen parameters still stop changing (no gradient: torch
optimizers skip a parameter whose .grad is None), but newly unfrozen ones
absent from the optimizer receive gradients and are NEVER UPDATED; the
callback lists them in report["not_in_optimizer"] and warns.
Resuming (resume_from_checkpoint) loads optimizer.pt, whose groups hold
the set trained up to that save (on_save applies a new set only after
the checkpoint is written); the Trainer builds the optimizer from
requires_grad before loading it, so set requires_grad to that set (the
selection applied at the save before that checkpoint) before building
the Trainer, or the load fails ("loaded state dict contains a parameter
group that doesn't match the size of optimizer's group").
After each application the callback calls on_change(selection, report).

INTO THE TRACKER (report_to): after each application the callback logs a
few numbers through the Trainer's own Trainer.log, so they reach every
reporting integration the user chose (TensorBoard, W&B, MLflow, ...) at
state.global_step and land in state.log_history (hence trainer_state.json,
which spectrumd reads back as the run's training log):
  spectrum/version             the applied selection's version
  spectrum/selection_step      the checkpoint step it was computed from
  spectrum/selected_matrices   the matrices the selection lists
  spectrum/unfrozen_tensors    model parameters now requires_grad=True
  spectrum/unfrozen_elements   their elements
  spectrum/unfrozen_fraction   unfrozen_elements / all elements
  spectrum/churn               modules added + removed since the version
                               applied before (not logged the first time)
  spectrum/snr_median_selected median SNR of the selected matrices and
  spectrum/snr_median_frozen   of the others, at selection_step (from one
                               GET /snr per new version; log_snr=False
                               leaves them and that request out)
One entry per applied version: an unchanged version costs no request but
the 304 and logs nothing. Why Trainer.log and not on_log: the Trainer puts
the reporting callbacks (get_reporting_integration_callbacks(report_to))
BEFORE the user's callbacks in its CallbackHandler, and Trainer.log appends
{**logs, "step"} to state.log_history and then runs every callback's
on_log in that order; keys a user callback adds to `logs` in its on_log
therefore reach neither the trackers (they already wrote) nor
log_history. A callback is not handed the Trainer (only model, optimizer,
scheduler, tokenizer, dataloaders), so give it one:
    cb = SpectrumCallback(client)
    trainer = Trainer(..., callbacks=[cb])
    cb.bind(trainer)             # or SpectrumCallback(client, trainer=...)
Without a trainer the numbers are only kept in .metrics (and logged to the
Python logger). Under torch.distributed only rank 0 logs (it alone has
the /snr answer; the integrations write on the main process only).
DISTRIBUTED TRAINING (DDP, FSDP, torchrun: torch.distributed initialised
with more than one process): every process must train the same set, or
DDP's gradient all-reduce hangs or mixes frozen and trained copies. So
only rank 0 talks to the daemon; the selection it got (or None) is sent to
every other rank with torch.distributed.broadcast_object_list, and all
ranks apply the same version at the same step. The callback's events are
collective then: on_train_begin and on_save run on every process in the
HF Trainer, and on_step_begin polls every poll_every_steps steps (the same
steps on every rank; the time-based poll_interval_s is used only by a
single process). Non-zero ranks never open a connection: their client is
not used.
Under DeepSpeed (flattened param groups) that check does not apply, and
changing requires_grad after the engine is built is not supported: apply
the set before building the Trainer. FSDP needs use_orig_params=True.

transformers is imported guarded: without it this module still imports
(SpectrumCallback then derives from a stand-in whose TrainerCallback
events do nothing), so its logic can be tested
without transformers or torch. Standard library only otherwise.
"""

import logging
import os
import statistics
import sys
import time

try:
    from spectrum_client import SpectrumError, matches
    from spectrum_optim import OptimizerSync
except ImportError:     # not on sys.path: it lives next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from spectrum_client import SpectrumError, matches
    from spectrum_optim import OptimizerSync

try:
    from transformers import TrainerCallback as _Base
except ImportError:
    class _Base:
        """Without transformers: TrainerCallback's events as no-ops, so a
        CallbackHandler-like caller can send any event."""

    for _ev in ("on_init_end", "on_train_begin", "on_train_end",
                "on_epoch_begin", "on_epoch_end", "on_step_begin",
                "on_pre_optimizer_step", "on_optimizer_step",
                "on_substep_end", "on_step_end", "on_evaluate",
                "on_predict", "on_save", "on_log", "on_prediction_step"):
        setattr(_Base, _ev, lambda self, args, state, control, **kw: None)
    del _ev

__all__ = ["SpectrumCallback", "apply_to_model"]

LOG = logging.getLogger("spectrum")


def apply_to_model(model, selection):
    """Sets requires_grad on model.named_parameters() from selection's
    patterns (unfrozen when matched, frozen otherwise).

    Returns a report dict: version, unfrozen and total parameter counts,
    unfrozen_elements/total_elements (when parameters have numel()), and
    the names newly unfrozen / newly frozen by this call.
    """
    pats = selection.get("patterns") or []
    rep = {"version": selection.get("version"), "unfrozen": 0, "total": 0,
           "unfrozen_elements": 0, "total_elements": 0,
           "newly_unfrozen": [], "newly_frozen": []}
    for name, p in model.named_parameters():
        want = matches(name, pats)
        was = bool(getattr(p, "requires_grad", False))
        if want != was:
            p.requires_grad = want
            (rep["newly_unfrozen"] if want else rep["newly_frozen"]).append(
                name)
        n = p.numel() if hasattr(p, "numel") else 0
        rep["total"] += 1
        rep["total_elements"] += n
        if want:
            rep["unfrozen"] += 1
            rep["unfrozen_elements"] += n
    return rep


def _syncable(optimizer):
    """The torch.optim optimizer behind optimizer (accelerate wraps it in
    .optimizer), or None when it has no per-parameter state dict."""
    inner = getattr(optimizer, "optimizer", None)
    if inner is not None and hasattr(inner, "param_groups"):
        optimizer = inner
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(getattr(optimizer, "state", None), dict) or \
            not isinstance(groups, list) or \
            not all(isinstance(g, dict) and "params" in g for g in groups):
        return None
    return optimizer


def _optimizer_params(optimizer):
    ids = set()
    for g in getattr(optimizer, "param_groups", None) or []:
        for p in g.get("params", []):
            ids.add(id(p))
    return ids


class SpectrumCallback(_Base):
    """TrainerCallback applying spectrumd's selection; see the module doc
    (especially the parts on the optimizer and on distributed training).

    client: a spectrum_client.SpectrumClient (own one per callback; only
    rank 0's is used under torch.distributed).
    apply_on: events that fetch and apply: "train_begin", "save",
    "step_begin". poll_interval_s: the least time between on_step_begin
    polls of a single process; poll_every_steps: the steps between them
    when distributed (every rank polls at the same global_step).
    on_change(selection, report): called after each application.
    sync_optimizer: also edit the optimizer the Trainer passes (see the
    module doc), when it is a torch.optim-style one.
    After each application .report holds apply_to_model's report plus
    "not_in_optimizer", the names unfrozen but absent from the optimizer
    (None when no optimizer was passed; [] after a sync), and
    "optimizer_synced" (True when the optimizer was edited; then also
    "kept", the names whose optimizer state was kept).
    trainer: the HF Trainer (anything with .log(dict)) whose log carries
    the spectrum/* metrics into report_to (see the module doc; also
    bind()); log_snr: add the median SNRs (one GET /snr per new version).
    After each application .metrics holds the dict logged.
    """

    def __init__(self, client, apply_on=("train_begin", "save"),
                 poll_interval_s=60.0, on_change=None, logger=None,
                 poll_every_steps=100, dist=None, sync_optimizer=True,
                 trainer=None, log_snr=True):
        unknown = set(apply_on) - {"train_begin", "save", "step_begin"}
        if unknown:
            raise ValueError("unknown apply_on events: %s" % sorted(unknown))
        self.client = client
        self.apply_on = tuple(apply_on)
        self.poll_interval_s = poll_interval_s
        self.on_change = on_change
        self.log = logger or LOG
        if poll_every_steps < 1:
            raise ValueError("poll_every_steps must be at least 1")
        self.poll_every_steps = poll_every_steps
        self._dist = dist
        self.sync_optimizer = sync_optimizer
        self._sync = None       # the OptimizerSync of the last optimizer
        self.applied_version = None
        self.report = None
        self._last_poll = None
        self.trainer = trainer
        self.log_snr = log_snr
        self.metrics = None
        self._modules = None    # the modules of the version applied last

    def bind(self, trainer):
        """Logs the spectrum/* metrics through trainer.log from now on
        (the Trainer that holds this callback); returns self."""
        self.trainer = trainer
        return self

    def _snr_medians(self, sel):
        """(median SNR of the selected matrices, of the others) at the
        selection's step, from one /snr request; Nones when unknown."""
        try:
            snr = self.client.snr(sel.get("step"))
        except (SpectrumError, OSError, ValueError) as e:
            self.log.warning("spectrum: /snr unavailable: %s", e)
            return None, None
        chosen = set(sel.get("parameters") or [])
        a, b = [], []
        for m in snr.get("matrices") or []:
            v = m.get("snr")
            if isinstance(v, (int, float)):
                (a if m.get("name") in chosen else b).append(float(v))
        return (statistics.median(a) if a else None,
                statistics.median(b) if b else None)

    def _metrics(self, sel, rep):
        """The spectrum/* dict of one application (see the module doc)."""
        mods = set(sel.get("modules") or [])
        m = {"spectrum/version": sel.get("version"),
             "spectrum/selection_step": sel.get("step"),
             "spectrum/selected_matrices": len(sel.get("parameters") or []),
             "spectrum/unfrozen_tensors": rep["unfrozen"],
             "spectrum/unfrozen_elements": rep["unfrozen_elements"]}
        if rep["total_elements"]:
            m["spectrum/unfrozen_fraction"] = \
                rep["unfrozen_elements"] / rep["total_elements"]
        if self._modules is not None:
            m["spectrum/churn"] = len(mods ^ self._modules)
        self._modules = mods
        if self.log_snr:
            hi, lo = self._snr_medians(sel)
            if hi is not None:
                m["spectrum/snr_median_selected"] = hi
            if lo is not None:
                m["spectrum/snr_median_frozen"] = lo
        return {k: v for k, v in m.items() if v is not None}

    def _log_metrics(self, sel, rep):
        d = self._distributed()
        if d is not None and d.get_rank() != 0:
            return
        self.metrics = self._metrics(sel, rep)
        self.log.info("spectrum: %s", self.metrics)
        if self.trainer is not None:
            self.trainer.log(dict(self.metrics))

    def _distributed(self):
        """torch.distributed when it runs more than one process, else
        None (dist= given to the constructor replaces the module)."""
        d = self._dist
        if d is None:
            try:
                import torch.distributed as d
            except ImportError:
                return None
        if not (d.is_available() and d.is_initialized()) or \
                d.get_world_size() < 2:
            return None
        return d

    def _fetch(self, wait=0):
        """The newest selection, or None on error / none yet. Under
        torch.distributed rank 0 asks the daemon and every rank returns
        what rank 0 got (a collective call: all ranks must make it)."""
        d = self._distributed()
        sel = None
        if d is None or d.get_rank() == 0:
            try:
                self.client.selection(wait=wait)
            except (SpectrumError, OSError, ValueError) as e:
                self.log.warning("spectrum: selection unavailable: %s", e)
            sel = self.client.current
        if d is not None:
            box = [sel]
            d.broadcast_object_list(box, src=0)
            sel = box[0]
        return sel

    def _apply(self, model, optimizer, sel):
        rep = apply_to_model(model, sel)
        rep["optimizer_synced"] = False
        opt = _syncable(optimizer) if self.sync_optimizer else None
        if opt is not None:
            if self._sync is None or self._sync.opt is not opt:
                self._sync = OptimizerSync(opt)
            srep = self._sync.apply(model, [
                n for n, p in model.named_parameters() if p.requires_grad])
            rep["optimizer_synced"] = True
            rep["kept"] = srep["kept"]
        if optimizer is not None:
            held = _optimizer_params(optimizer)
            rep["not_in_optimizer"] = [
                n for n, p in model.named_parameters()
                if getattr(p, "requires_grad", False) and id(p) not in held]
        else:
            rep["not_in_optimizer"] = None
        self.applied_version = sel.get("version")
        self.report = rep
        self._log_metrics(sel, rep)
        self.log.info(
            "spectrum: selection v%s (step %s, top %s%%): unfroze %d of %d "
            "parameters (%d of %d elements)", sel.get("version"),
            sel.get("step"), sel.get("top_percent"), rep["unfrozen"],
            rep["total"], rep["unfrozen_elements"], rep["total_elements"])
        if rep["not_in_optimizer"]:
            self.log.warning(
                "spectrum: %d unfrozen parameters are not in the optimizer "
                "and will not be updated (e.g. %s); pass the torch optimizer "
                "with sync_optimizer=True, or rebuild it",
                len(rep["not_in_optimizer"]), rep["not_in_optimizer"][0])
        if self.on_change is not None:
            self.on_change(sel, rep)
        return rep

    def _maybe_apply(self, model, optimizer):
        """Polls without blocking; re-applies on a new version. Returns
        the report when it applied, else None."""
        sel = self._fetch(wait=0)
        if model is None or sel is None or \
                sel.get("version") == self.applied_version:
            return None
        return self._apply(model, optimizer, sel)

    def on_train_begin(self, args, state, control, model=None,
                       optimizer=None, **kwargs):
        """Fetches and applies the selection before training starts."""
        if "train_begin" not in self.apply_on:
            return None
        if self._maybe_apply(model, optimizer) is None and \
                self.applied_version is None:
            self.log.warning("spectrum: no selection yet; training with "
                             "the model's own requires_grad flags")
        return None

    def on_save(self, args, state, control, model=None, optimizer=None,
                **kwargs):
        """After a checkpoint is written: re-applies a new version."""
        if "save" in self.apply_on:
            self._maybe_apply(model, optimizer)
        return None

    def on_step_begin(self, args, state, control, model=None,
                      optimizer=None, **kwargs):
        """At most every poll_interval_s: re-applies a new version."""
        if "step_begin" not in self.apply_on:
            return None
        if self._distributed() is not None:
            step = getattr(state, "global_step", 0) or 0
            if step % self.poll_every_steps == 0:
                self._maybe_apply(model, optimizer)
            return None
        now = time.monotonic()
        if self._last_poll is not None and \
                now - self._last_poll < self.poll_interval_s:
            return None
        self._last_poll = now
        self._maybe_apply(model, optimizer)
        return None

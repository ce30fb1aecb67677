"""Applies an unfreeze set to a model AND its optimizer, keeping the
optimizer state of the parameters that stay trainable.

    from spectrum_optim import OptimizerSync
    sync = OptimizerSync(optimizer)          # once, after building it
    rep = sync.apply(model, names)            # names: the set to train

Setting requires_grad alone does not change what an optimizer updates (see
hf_callback.py's docstring). apply() also edits the optimizer in place:
  - a parameter that becomes FROZEN gets requires_grad=False and .grad None,
    leaves its param group and its state (AdamW's exp_avg/exp_avg_sq, step)
    is dropped, which is where the memory saving comes from;
  - a parameter that becomes TRAINABLE gets requires_grad=True and joins
    its "home" group with fresh state: the group it was in when the
    OptimizerSync was made, else the first group whose weight_decay fits
    (> 0 for matrices, == 0 for vectors, as HF Trainer groups them), else
    group 0;
  - a parameter that STAYS keeps its group, its position and its state
    untouched (same tensor objects), so Adam's moments carry on.
No param group is added or removed (an LR scheduler built on the optimizer
keeps driving every group), except with lr_scales (below).

lr_scales (optional; e.g. from the daemon's /lr_scales through
spectrum_client.scales_for): a dict name -> multiplier, given anew at each
apply(). A trainable parameter whose multiplier is not 1 is put
in a group of its own per (home group, multiplier), created on first use
with the home group's hyper-parameters, lr = home lr * multiplier and
"lr_scale" = multiplier. A scheduler that sets lr itself must honour
"lr_scale" (train_loop.py does); torch's LambdaLR ignores groups added
after it was built. Without lr_scales nothing of this happens.

Works with any torch.optim optimizer whose per-parameter state lives in
optimizer.state[param] (SGD, Adam, AdamW, ...). Not for DeepSpeed or
ZeRO-sharded optimizers (flattened groups). Under DDP every rank must apply
the same set at the same step (hf_callback.py broadcasts it).
"""

__all__ = ["OptimizerSync", "apply_names"]


def _is_matrix(p):
    return getattr(p, "ndim", 2) >= 2


def apply_names(model, names):
    """Sets requires_grad from names (a collection of parameter names);
    frozen parameters lose their .grad. Returns (newly_unfrozen,
    newly_frozen) name lists, in model order."""
    want = set(names)
    on, off = [], []
    for name, p in model.named_parameters():
        t = name in want
        if bool(p.requires_grad) != t:
            p.requires_grad_(t) if hasattr(p, "requires_grad_") else \
                setattr(p, "requires_grad", t)
            (on if t else off).append(name)
        if not t and getattr(p, "grad", None) is not None:
            p.grad = None
    return on, off


class OptimizerSync:
    """Keeps one torch optimizer in step with the model's trainable set.

    optimizer: a torch.optim.Optimizer (its param_groups and state are
    edited in place). Remember each held parameter's group at creation.
    """

    def __init__(self, optimizer):
        self.opt = optimizer
        self.home = {}          # id(param) -> index of its home group
        self.n_base = len(optimizer.param_groups)
        self.scaled = {}        # (home index, scale) -> group index
        for gi, g in enumerate(optimizer.param_groups):
            for p in g["params"]:
                self.home[id(p)] = gi

    def _home_of(self, p):
        gi = self.home.get(id(p))
        if gi is not None:
            return gi
        groups = self.opt.param_groups[:self.n_base]
        for gi, g in enumerate(groups):
            wd = g.get("weight_decay", 0.0) or 0.0
            if (wd > 0) == _is_matrix(p):
                break
        else:
            gi = 0
        self.home[id(p)] = gi
        return gi

    def _group_for(self, p, scale):
        gi = self._home_of(p)
        if scale == 1.0:
            return gi
        key = (gi, float(scale))
        si = self.scaled.get(key)
        if si is None:
            base = self.opt.param_groups[gi]
            g = {k: v for k, v in base.items() if k != "params"}
            g["params"] = []
            g["lr"] = base["lr"] * scale
            g["lr_scale"] = float(scale)
            self.opt.param_groups.append(g)
            si = self.scaled[key] = len(self.opt.param_groups) - 1
        return si

    def held(self):
        """id(param) -> index of the group holding it now."""
        return {id(p): gi for gi, g in enumerate(self.opt.param_groups)
                for p in g["params"]}

    def apply(self, model, names, lr_scales=None):
        """Trains exactly the parameters named in names (every other
        model parameter is frozen) and edits the optimizer to match.

        Returns a report: trainable (names), trainable_elements,
        total_elements, newly_unfrozen, newly_frozen, kept (names whose
        optimizer state was kept), moved (names that changed group
        because their lr scale changed; they keep their state).
        """
        want = set(names)
        scales = lr_scales or {}
        on, off = apply_names(model, want)
        held = self.held()
        target = {}             # id -> group index wanted
        params = {}
        rep = {"trainable": [], "trainable_elements": 0,
               "total_elements": 0, "newly_unfrozen": on,
               "newly_frozen": off, "kept": [], "moved": []}
        for name, p in model.named_parameters():
            n = p.numel()
            rep["total_elements"] += n
            params[id(p)] = p
            if name in want:
                target[id(p)] = self._group_for(p, scales.get(name, 1.0))
                rep["trainable"].append(name)
                rep["trainable_elements"] += n
                if id(p) in held:
                    rep["kept" if held[id(p)] == target[id(p)]
                        else "moved"].append(name)
        # Leave: parameters held but no longer wanted (or moving groups).
        for gi, g in enumerate(self.opt.param_groups):
            keep = []
            for p in g["params"]:
                if target.get(id(p)) == gi:
                    keep.append(p)
                elif id(p) not in target:
                    self.opt.state.pop(p, None)
            g["params"] = keep
        # Join: wanted parameters not in their target group yet, in model
        # order; state of a moved parameter stays in optimizer.state.
        now = self.held()
        for name, p in model.named_parameters():
            gi = target.get(id(p))
            if gi is not None and now.get(id(p)) != gi:
                self.opt.param_groups[gi]["params"].append(p)
        return rep

    def scales(self, model):
        """{name: lr_scale of the group holding it} for the model
        parameters the optimizer holds (1.0 in a group without one)."""
        sc = {id(p): g.get("lr_scale", 1.0) for g in self.opt.param_groups
              for p in g["params"]}
        return {n: sc[id(p)] for n, p in model.named_parameters()
                if id(p) in sc}

    def trainable_names(self, model):
        """Names of the model parameters the optimizer holds now."""
        held = self.held()
        return [n for n, p in model.named_parameters() if id(p) in held]

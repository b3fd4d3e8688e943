"""A JAX peer of the batched ensemble, for ``python -m bijepa_nb.bench --peer jax``.

The same job as ``Ensemble`` + ``train_ensemble`` on the sine task (expressive mode):
K BiJEPA runs, each with its own initialisation and its own fresh batches, written the
way a JAX user would write it:

- parameters are a pytree of dicts (``w`` [in, out], ``b``; ``g``, ``beta`` for the
  LayerNorm after every hidden layer, which is followed by ReLU), initialised like
  ``torch.nn.Linear`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias);
- one member's step: a fresh batch from ``jax.random`` (the distribution of
  ``core.data.sine_sequences``), the loss of Eq. 8 with both views through one encoder
  call and ``lax.stop_gradient`` on the target encoder, ``jax.value_and_grad``,
  ``optax.adamw``, then the EMA ``optax.incremental_update`` of the target encoder;
- ``lax.scan`` over steps, ``jax.vmap`` over members, ``jax.jit`` over the whole run.

jax and optax are optional (the ``bench`` extra): without them ``available()`` is False
and nothing else here may be called. Timing runs in a worker process (``serve``) so that
the XLA thread settings, read once when the backend starts, can differ per worker.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from ..core.config import ModelConfig, SineConfig, TrainConfig
from .registry import paper_config

try:  # optional: pip install -e ".[bench]"
    import jax
    import jax.numpy as jnp
    import optax
except ImportError:  # pragma: no cover - depends on the environment
    jax = jnp = optax = None

INSTALL_HINT = (
    "the JAX peer needs jax and optax, which are not installed: "
    'pip install -e ".[bench]"'
)

#: XLA_FLAGS of a worker limited to one thread (XLA reads them when its backend starts).
ONE_THREAD_XLA_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)


def available() -> bool:
    """Whether jax and optax can be imported here."""
    return jax is not None and optax is not None


def sine_configs(num_steps: int = 2000) -> tuple[ModelConfig, TrainConfig]:
    """The registry's sine settings, expressive mode, alpha 0.5 (what the peer trains)."""
    return paper_config(
        "sine", "expressive", 0.5, num_steps=num_steps, progress=False, device="cpu"
    )


# ------------------------------------------------------------------------- model
def _linear(key, d_in: int, d_out: int, layernorm: bool) -> dict:
    kw, kb = jax.random.split(key)
    bound = 1.0 / math.sqrt(d_in)
    layer = {
        "w": jax.random.uniform(kw, (d_in, d_out), jnp.float32, -bound, bound),
        "b": jax.random.uniform(kb, (d_out,), jnp.float32, -bound, bound),
    }
    if layernorm:
        layer |= {"g": jnp.ones(d_out), "beta": jnp.zeros(d_out)}
    return layer


def init_params(key, mc: ModelConfig) -> dict:
    """Online parameters {"enc", "fwd", "bwd"}: each a tuple of layer dicts."""
    k = jax.random.split(key, 7)
    h, p, e = mc.hidden_dim, mc.pred_hidden_dim, mc.embed_dim
    enc = (
        _linear(k[0], mc.input_dim, h, True),
        _linear(k[1], h, h, True),
        _linear(k[2], h, e, False),
    )
    fwd = (_linear(k[3], e, p, True), _linear(k[4], p, e, False))
    bwd = (_linear(k[5], e, p, True), _linear(k[6], p, e, False))
    return {"enc": enc, "fwd": fwd, "bwd": bwd}


def mlp(layers, x):
    """Linear, then LayerNorm (eps 1e-5, as torch) + ReLU wherever the layer has ``g``."""
    for layer in layers:
        x = x @ layer["w"] + layer["b"]
        if "g" in layer:
            mu = x.mean(-1, keepdims=True)
            var = jnp.square(x - mu).mean(-1, keepdims=True)
            x = jax.nn.relu(
                (x - mu) * jax.lax.rsqrt(var + 1e-5) * layer["g"] + layer["beta"]
            )
    return x


def loss(online: dict, target_enc, context, target, alpha: float):
    """(total, (fwd, bwd)) of Eq. 8 for one member: context, target [B, 10]."""
    n = context.shape[0]
    both = jnp.concatenate((context, target))
    t = jax.lax.stop_gradient(
        mlp(target_enc, both)
    )  # the target encoder is not trained
    o = mlp(online["enc"], both)
    fwd = jnp.mean(jnp.square(mlp(online["fwd"], o[:n]) - t[n:]))
    bwd = jnp.mean(jnp.square(mlp(online["bwd"], o[n:]) - t[:n]))
    return alpha * fwd + (1.0 - alpha) * bwd, (fwd, bwd)


def sine_batch(key, batch_size: int, cfg: SineConfig = SineConfig()):
    """(context, target) of ``batch_size`` fresh waves sin(w t + phi) + eps (as ``sine_sequences``)."""
    ku, kn = jax.random.split(key)
    u = jax.random.uniform(ku, (batch_size, 2))
    freq = cfg.freq_low + (cfg.freq_high - cfg.freq_low) * u[:, :1]
    phase = 2 * math.pi * u[:, 1:]
    t = jnp.linspace(0.0, cfg.t_max, cfg.seq_len)
    noise = cfg.noise_std * jax.random.normal(kn, (batch_size, cfg.seq_len))
    seq = jnp.sin(freq * t + phase) + noise
    return seq[:, : cfg.context_len], seq[:, cfg.context_len :]


# -------------------------------------------------------------------------- training
def make_step(tc: TrainConfig):
    """(optimizer, step): ``step(state, batch) -> (state, [total, fwd, bwd])`` for one member,
    ``state = (online, target_enc, opt_state)``: loss -> grad -> AdamW -> EMA."""
    opt = optax.adamw(tc.lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=tc.weight_decay)

    def step(state, batch):
        online, target_enc, opt_state = state
        (total, (fwd, bwd)), grads = jax.value_and_grad(loss, has_aux=True)(
            online, target_enc, *batch, tc.alpha
        )
        updates, opt_state = opt.update(grads, opt_state, online)
        online = optax.apply_updates(online, updates)
        target_enc = optax.incremental_update(
            online["enc"], target_enc, 1.0 - tc.ema_momentum
        )
        return (online, target_enc, opt_state), jnp.stack((total, fwd, bwd))

    return opt, step


def make_train(mc: ModelConfig, tc: TrainConfig, cfg: SineConfig = SineConfig()):
    """``train(keys) -> losses [K, num_steps, 3]``: K members (one PRNG key each) trained
    for ``tc.num_steps`` steps; jitted, vmapped over members, scanned over steps."""
    opt, step = make_step(tc)

    def member(key):
        k_init, k_data = jax.random.split(key)
        online = init_params(k_init, mc)
        state = (online, online["enc"], opt.init(online))

        def body(state, k):
            return step(state, sine_batch(k, tc.batch_size, cfg))

        _, losses = jax.lax.scan(body, state, jax.random.split(k_data, tc.num_steps))
        return losses

    return jax.jit(jax.vmap(member))


def member_keys(k: int):
    """One PRNG key per member (seeds 0..k-1): [k, 2]."""
    return jnp.stack([jax.random.PRNGKey(s) for s in range(k)])


def params_from_torch(model) -> tuple[dict, tuple]:
    """(online params, target encoder) copied from a ``core.models.JEPA`` (MLP, LayerNorm)."""

    def layers(seq):
        out = []
        for m in seq:
            sd = {n: v.detach().cpu().numpy() for n, v in m.state_dict().items()}
            if "bias" in sd and "weight" in sd and sd["weight"].ndim == 2:
                out.append(
                    {"w": jnp.asarray(sd["weight"].T), "b": jnp.asarray(sd["bias"])}
                )
            elif sd:  # LayerNorm
                out[-1] |= {
                    "g": jnp.asarray(sd["weight"]),
                    "beta": jnp.asarray(sd["bias"]),
                }
        return tuple(out)

    online = {
        "enc": layers(model.online_encoder.net),
        "fwd": layers(model.fwd_predictor.net),
        "bwd": layers(model.bwd_predictor.net),
    }
    return online, layers(model.target_encoder.net)


# ---------------------------------------------------------------- timing worker
def serve() -> None:
    """Worker loop: argv[1] is JSON {"steps", "ks"}. Compiles ``make_train`` for every K
    (prints {"compile": {K: seconds}}), then answers each stdin line "K" with one JSON
    line {"wall", "cpu", "loss"} for a timed run of K members (compile excluded)."""
    spec = json.loads(sys.argv[1])
    mc, tc = sine_configs(spec["steps"])
    train = make_train(mc, tc)
    compiled, compile_s = {}, {}
    for k in spec["ks"]:
        t0 = time.perf_counter()
        compiled[k] = train.lower(member_keys(k)).compile()
        compile_s[k] = time.perf_counter() - t0
    print(json.dumps({"compile": compile_s, "jax": jax.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        k = int(line)
        t0, c0 = time.perf_counter(), time.process_time()
        losses = compiled[k](member_keys(k)).block_until_ready()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        last = float(losses[:, -1, 0].mean())
        print(json.dumps({"wall": wall, "cpu": cpu, "loss": last}), flush=True)


class Worker:
    """A ``serve`` process with ``threads`` XLA threads: 1 sets ``ONE_THREAD_XLA_FLAGS``,
    more leaves XLA's default (one per core; this machine has 2)."""

    def __init__(self, threads: int, steps: int, ks: list[int]):
        env = dict(os.environ)
        if threads == 1:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " " + ONE_THREAD_XLA_FLAGS
            ).strip()
        code = "from bijepa_nb.experiments.jax_peer import serve; serve()"
        spec = json.dumps({"steps": steps, "ks": ks})
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        hello = self._read()
        self.compile_s = {int(k): v for k, v in hello["compile"].items()}
        self.version = hello["jax"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"JAX worker exited (code {self.proc.wait()})")
        return json.loads(line)

    def run(self, k: int) -> dict:
        """One timed run of K members: {"wall", "cpu", "loss"}."""
        self.proc.stdin.write(f"{k}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)

"""Would a cheaper encoder fit the representation table into 30 minutes? One task, one method:
random init, the supervised bound and the method's row, as ``representation_benchmark.py``
measures them (same frames, shift, 9 epochs × batch 64, Adam 1e-3, seed 0, float32, ridge
probe on held-out episodes), for any encoder and its options.

``MUJOCO_GL=egl python experiments/encoder_cost.py --encoder nature --encoder-kwargs
'{"features_dim": 50}' --data-dir DIR`` (frames rendered by the benchmark's ``--job render``
or any ``rlrep pretrain --dataset dmc:TASK --image-size 64`` run). Prints one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="curl")
    parser.add_argument("--encoder-kwargs", type=json.loads, default={})
    parser.add_argument("--task", default="cartpole-swingup")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from representation_benchmark import train_supervised  # this folder (the script's)

    import rlrep.augment as augment_lib
    import rlrep.encoders as encoder_lib
    from rlrep.datasets import load_dataset
    from rlrep.pretrain import default_augmentation, pretrain
    from rlrep.probes import encode, state_r2_report

    ds = load_dataset(f"dmc:{args.task}", args.data_dir, image_size=64, seed=0)
    name, kwargs = default_augmentation(ds)
    augment = augment_lib.make(name, **kwargs)
    shape = tuple(augment.deterministic(ds.train[:1]).shape[1:])

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return encoder_lib.make(args.encoder, shape, **args.encoder_kwargs)

    def report(row: str, encoder: torch.nn.Module, seconds: float) -> None:
        f_train, f_test = (encode(encoder, augment.deterministic(x)) for x in (ds.train, ds.test))
        r2 = state_r2_report(f_train, ds.train_states, f_test, ds.test_states, ds.state_keys)
        print(json.dumps({"encoder": args.encoder, **args.encoder_kwargs, "row": row,
                          "positions": round(r2["state_r2_position"], 3),
                          "velocities": round(r2["state_r2_velocity"], 3),
                          "seconds": round(seconds)}), flush=True)  # fmt: skip

    report("random init", build(), 0.0)
    encoder, start = build(), time.perf_counter()  # the supervised bound, as the table's
    train_supervised(encoder, ds, augment, args.epochs, batch_size=64, amp=False)
    report("supervised", encoder, time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        pretrain(method=args.method, dataset=f"dmc:{args.task}", encoder=args.encoder,
                 encoder_kwargs=args.encoder_kwargs, epochs=args.epochs, batch_size=64,
                 out=out, data_dir=args.data_dir, image_size=64, seed=0, amp=False,
                 progress=False, eval_every=0)  # fmt: skip
        seconds = time.perf_counter() - start
        state = torch.load(f"{out}/checkpoint.pt", weights_only=True)
    encoder = build()
    encoder.load_state_dict(state["encoder"])
    report(args.method, encoder, seconds)


if __name__ == "__main__":
    main()

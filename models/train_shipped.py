"""Train the model shipped in models/ (until ``ampnet train`` lands).

Usage: python models/train_shipped.py DEVICE_DIR OUT.json MINUTES
DEVICE_DIR holds dry_train/wet_train/dry_val/wet_val.flac (../shared/data/devices/gx-tiltdrive).
"""

import datetime
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ampnet import __version__
from ampnet.formats import save_model
from ampnet.train.losses import esr, esr_dc_loss
from ampnet.train.network import AmpLSTM

HIDDEN, SEGMENT, WARMUP, UPDATE, BATCH = 24, 8192, 1024, 2048, 32


def main(device_dir, out_path, minutes):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = Path(device_dir)
    dry, rate = sf.read(d / "dry_train.flac", dtype="float32")
    wet, _ = sf.read(d / "wet_train.flac", dtype="float32")
    dry_val, _ = sf.read(d / "dry_val.flac", dtype="float32")
    wet_val, _ = sf.read(d / "wet_val.flac", dtype="float32")
    scale = float(0.5 / np.percentile(np.abs(dry), 99.9))
    net = AmpLSTM(HIDDEN, 1, skip=True, input_scale=scale)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    deadline = time.time() + minutes * 60
    x_val = torch.from_numpy(dry_val)[None, :, None]
    y_val = torch.from_numpy(wet_val)[None, :, None]
    best, best_state, step = float("inf"), None, 0
    rng = np.random.default_rng(0)
    while time.time() < deadline:
        starts = rng.integers(0, dry.size - SEGMENT, BATCH)
        x = torch.from_numpy(np.stack([dry[s:s + SEGMENT] for s in starts]))[..., None]
        y = torch.from_numpy(np.stack([wet[s:s + SEGMENT] for s in starts]))[..., None]
        with torch.no_grad():
            _, state = net(x[:, :WARMUP])
        for s in range(WARMUP, SEGMENT, UPDATE):
            pred, state = net(x[:, s:s + UPDATE], state)
            loss = esr_dc_loss(y[:, s:s + UPDATE], pred)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            state = tuple(t.detach() for t in state)
        step += 1
        if step % 100 == 0:
            with torch.no_grad():
                val = float(esr(y_val, net(x_val)[0]))
            print(f"step {step} loss {float(loss):.4f} val ESR {val:.4f}", flush=True)
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
            if step % 1000 == 0:
                for group in opt.param_groups:
                    group["lr"] *= 0.5
    net.load_state_dict(best_state)
    metadata = {
        "name": "GxTiltDrive (drive 0.8)", "gear": "Guitarix GxTiltTone overdrive, drive 0.8",
        "author": "ampnet", "date": datetime.date.today().isoformat(), "ampnet_version": __version__,
        "training_data": f"gx-tiltdrive: {dry.size / rate:.0f} s train, {dry_val.size / rate:.0f} s val, 48 kHz",
        "validation_esr": round(best, 5), "latency_samples": 0,
    }
    save_model(net.to_model(rate, metadata), out_path, overwrite=True)
    print(f"saved {out_path}: validation ESR {best:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))

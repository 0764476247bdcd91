"""Losses on ``(batch, frames, 1)`` tensors.

ESR with pre-emphasis and DC term, after Wright, Damskägg and Välimäki,
"Real-Time Guitar Amplifier Emulation with Deep Learning", Applied Sciences 10(3), 2020:
``loss = 0.75 * ESR(H(y), H(ŷ)) + 0.25 * DC(y, ŷ)`` with ``H(z) = 1 - 0.85 z^-1``
(:data:`PUBLISHED_PRE_EMPHASIS`; 0 makes it plain ESR).

An optional multi-resolution STFT term (spectral convergence + log magnitude,
Yamamoto et al., "Parallel WaveGAN", ICASSP 2020) comes from auraloss, with
window sizes short enough for the trainer's update chunks (64..256 samples).
"""

import torch

EPS = 1e-8
PUBLISHED_PRE_EMPHASIS = 0.85  # the paper's high-pass coefficient


def pre_emphasis(x, coefficient=PUBLISHED_PRE_EMPHASIS):
    """First-order high-pass ``x[n] - coefficient * x[n-1]`` along frames."""
    return torch.cat([x[:, :1], x[:, 1:] - coefficient * x[:, :-1]], dim=1)


def esr(target, prediction):
    """Error-to-signal ratio ``sum((y - ŷ)^2) / sum(y^2)`` over the whole batch."""
    return torch.sum((target - prediction) ** 2) / (torch.sum(target ** 2) + EPS)


def dc_loss(target, prediction):
    """Squared mean error per sequence over the signal energy."""
    return torch.mean(torch.mean(target - prediction, dim=1) ** 2) / (torch.mean(target ** 2) + EPS)


def esr_dc_loss(target, prediction, coefficient=PUBLISHED_PRE_EMPHASIS):
    """The published recipe: 0.75 ESR on pre-emphasised signals + 0.25 DC."""
    return (0.75 * esr(pre_emphasis(target, coefficient), pre_emphasis(prediction, coefficient))
            + 0.25 * dc_loss(target, prediction))


class MultiResolutionSTFT(torch.nn.Module):
    """auraloss's multi-resolution STFT loss on ``(batch, frames, 1)`` tensors."""

    def __init__(self, fft_sizes=(256, 128, 64)):
        super().__init__()
        from auraloss.freq import MultiResolutionSTFTLoss

        self.loss = MultiResolutionSTFTLoss(fft_sizes=list(fft_sizes),
                                            hop_sizes=[n // 4 for n in fft_sizes],
                                            win_lengths=list(fft_sizes))

    def forward(self, target, prediction):
        return self.loss(prediction.transpose(1, 2), target.transpose(1, 2))

"""Neural-network building blocks of the learned closures (torch, float32, batch-first
(B, C, H, W), periodic fields).

* :mod:`.fourier` — :class:`SpectralConv2d`, :class:`FourierLayer`, :class:`FNO2d`: periodic,
  translation-equivariant Fourier neural operator layers.
* :mod:`.embedding` — embeddings of the diffusion time t ∈ (0, 1].
* :mod:`.score` — :class:`ConditionalFNOScore`, the two-branch conditional score network.
* :mod:`.autoencoder` — :class:`ConvAutoencoder`, a periodic conv ResNet autoencoder n² → (n/4)².
* :mod:`.periodic1d` — :class:`PeriodicConvNet1d`, circular dilated 1D convolutions of profiles,
  reflection-symmetrised.
"""
from .autoencoder import ConvAutoencoder, MeanNet, PeriodicConv2d, ResBlock
from .embedding import GaussianFourierEmbedding, SinusoidalEmbedding, time_embedding
from .fourier import FNO2d, FourierLayer, SpectralConv2d
from .score import ConditionalFNOScore, count_parameters

__all__ = ["ConditionalFNOScore", "ConvAutoencoder", "FNO2d", "FourierLayer",
           "GaussianFourierEmbedding", "MeanNet", "PeriodicConv2d", "ResBlock",
           "SinusoidalEmbedding", "SpectralConv2d", "count_parameters", "time_embedding"]

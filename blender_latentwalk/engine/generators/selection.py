"""Which generator a model is: the one place that tells BigGAN and StyleGAN apart."""

from . import biggan, stylegan
from .interface import Generator


def for_model(model):
    """The `Generator` for ``model``: StyleGAN for a .pkl / .pt / .pth file, else BigGAN (a name or folder)."""
    if stylegan.is_model_file(model):
        return stylegan.StyleGANGenerator(model)
    return biggan.BigGANGenerator(model)


def as_generator(generator_or_model):
    """A `Generator` as it is, or the one `for_model` makes of a model's name, folder or file."""
    return generator_or_model if isinstance(generator_or_model, Generator) else for_model(generator_or_model)

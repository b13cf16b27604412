"""Stable Diffusion img2img over BigGAN frames (diffusers).

A model is a Hugging Face hub id already in the local hub cache (default
``stabilityai/sd-turbo``; SD 1.5 and SDXL-class models work through the same
``AutoPipelineForImage2Image``), or a folder written by ``save_pretrained``.
Nothing is downloaded here: a model that is not on disk fails at once saying
where to put it. ``"none"`` skips diffusion.

Temporal coherence: every frame starts from the same noise (one generator per
image, seeded alike), so a still source gives a still result, and a frame's
result does not depend on which batch it was rendered in, to within a rounding
step (kernels round differently for other batch shapes; the render's aligned
batches keep its bytes fixed).
"""

import os

from ..errors import GET_THE_RENDER_STACK, LatentWalkError

NONE = "none"
DEFAULT_MODEL = "stabilityai/sd-turbo"


def load(name_or_path, device, dtype, tiny_vae=None):
    """An ``AutoPipelineForImage2Image`` on ``device``, or None for ``"none"``.

    tiny_vae : optional AutoencoderTiny (hub id or folder), a faster decoder/encoder.
    """
    if not name_or_path or name_or_path.lower() == NONE:
        return None
    try:
        from diffusers import AutoencoderTiny, AutoPipelineForImage2Image
        from diffusers.utils import logging as diffusers_logging
    except ImportError as error:
        raise LatentWalkError(f"Stable Diffusion needs diffusers and transformers, which this Python cannot import "
                              f"({error}); or use 'none' for BigGAN frames as they are. {GET_THE_RENDER_STACK}"
                              ) from None

    diffusers_logging.disable_progress_bar()
    pipeline = _from_pretrained(AutoPipelineForImage2Image, name_or_path, "Stable Diffusion model", dtype,
                                safety_checker=None)
    if tiny_vae:
        pipeline.vae = _from_pretrained(AutoencoderTiny, tiny_vae, "Tiny VAE", dtype)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def _from_pretrained(cls, name_or_path, what, dtype, **options):
    """``cls.from_pretrained`` from disk only; a missing model says where it was looked for."""
    local = os.path.isdir(name_or_path)
    if not local and os.path.sep in name_or_path.strip("/") and os.path.exists(os.path.dirname(name_or_path)):
        raise LatentWalkError(f"{what} folder '{name_or_path}' does not exist.")
    try:
        return cls.from_pretrained(name_or_path, dtype=dtype, local_files_only=True, **options)
    except (OSError, ValueError, EnvironmentError) as error:
        where = f"the folder '{name_or_path}'" if local else (
            f"the Hugging Face cache ({os.environ.get('HF_HUB_CACHE') or '~/.cache/huggingface/hub'})")
        raise LatentWalkError(
            f"{what} '{name_or_path}' could not be loaded from {where} ({str(error).splitlines()[0]}). "
            f"On a machine with network access run `hf download {name_or_path}` and copy the cache here, "
            "or give a folder written by save_pretrained"
            + (", or 'none' to skip diffusion." if what.startswith("Stable") else ", or leave it empty.")
        ) from None


def cached_commit(repo_id, file_names=("model_index.json", "config.json")):
    """The commit of ``repo_id``'s snapshot in the local Hugging Face cache, or None.

    A pipeline has model_index.json, a single model (a Tiny VAE) config.json; the
    cached path is .../snapshots/<commit>/<file>. Never touches the network.
    """
    try:
        from huggingface_hub import try_to_load_from_cache

        for file_name in file_names:
            cached = try_to_load_from_cache(repo_id, file_name)
            if isinstance(cached, str):
                return os.path.basename(os.path.dirname(cached))
    except (ImportError, ValueError):  # no huggingface_hub, or not a repository id
        pass
    return None


def is_available(name_or_path):
    """True when the pipeline is a folder or is in the local Hugging Face cache (no network)."""
    if os.path.isdir(name_or_path):
        return os.path.isfile(os.path.join(name_or_path, "model_index.json"))
    return cached_commit(name_or_path, ("model_index.json",)) is not None


def effective_steps(steps, strength):
    """How many of ``steps`` denoising steps img2img runs at ``strength``: ``int(steps * strength)``.

    diffusers runs exactly that many, so frames that agree on it (and on steps and
    guidance) are the same pipeline call and batch together even when an animated
    strength differs. 0 means the frame is the source image unchanged. (The small
    tolerance keeps 0.7 stored as float32 0.69999999 at 7 of 10 steps, not 6.)
    """
    return max(0, min(int(steps * strength + 1e-4), int(steps)))


def pipeline_strength(steps, effective):
    """The strength to hand diffusers so that it runs exactly ``effective`` of ``steps`` steps."""
    return 1.0 if effective >= steps else (effective + 0.5) / steps


class PromptEmbeddings:
    """Text embeddings of each distinct prompt, encoded once and blended per frame.

    Supports the Stable Diffusion 1.x/2.x family (sd-turbo included) and SDXL
    (sdxl-turbo included), whose pipelines accept precomputed ``prompt_embeds``.
    """

    def __init__(self, pipeline, negative_prompt, device):
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

        if isinstance(pipeline, StableDiffusionXLImg2ImgPipeline):
            self._xl = True
        elif isinstance(pipeline, StableDiffusionImg2ImgPipeline):
            self._xl = False
        else:
            raise LatentWalkError(
                f"the img2img model loads as {type(pipeline).__name__}; prompt schedules work with Stable "
                "Diffusion 1.x/2.x (e.g. stabilityai/sd-turbo) and SDXL (e.g. stabilityai/sdxl-turbo) models."
            )
        self._pipeline, self._negative, self._device = pipeline, negative_prompt, device
        self._cache, self._blends = {}, {}

    def _encode(self, text, guidance_on):
        import torch

        key = (text, guidance_on)
        if key not in self._cache:
            negative = self._negative or None
            with torch.inference_mode():
                if self._xl:
                    names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                             "negative_pooled_prompt_embeds")
                    values = self._pipeline.encode_prompt(prompt=text, device=self._device, num_images_per_prompt=1,
                                                          do_classifier_free_guidance=guidance_on,
                                                          negative_prompt=negative)
                else:
                    names = ("prompt_embeds", "negative_prompt_embeds")
                    values = self._pipeline.encode_prompt(text, self._device, 1, guidance_on, negative)
            self._cache[key] = {name: value for name, value in zip(names, values) if value is not None}
        return self._cache[key]

    def blend(self, mix, guidance_on):
        """Keyword tensors (batch 1) for a frame's {prompt text: weight} mix.

        Frames with the same mix (all frames between prompt changes) share one result.
        """
        key = (tuple(sorted(mix.items())), guidance_on)
        if key not in self._blends:
            self._blends[key] = self._blend(mix, guidance_on)
        return self._blends[key]

    def _blend(self, mix, guidance_on):
        parts = [(self._encode(text, guidance_on), weight) for text, weight in sorted(mix.items())]
        total = sum(weight for _, weight in parts)
        blended = {}
        for name in parts[0][0]:
            if name.startswith("negative"):  # one negative prompt for every frame
                blended[name] = parts[0][0][name]
            else:
                blended[name] = sum(embeddings[name] * (weight / total) for embeddings, weight in parts)
        return blended


def run(pipeline, images, conditions, strength, guidance, steps, seeds, device):
    """img2img on a batch of frames that share strength, guidance and steps, on the device.

    images : torch tensor (n, 3, height, width) on ``device``, float32 holding 8-bit values 0..255
        (`resize.apply`'s output, or `images_from_pictures`); any size: diffusers works in multiples
        of 8 pixels (``pipeline.vae_scale_factor``), so a frame is resized with Lanczos to that size
        and the result back, as diffusers and the PNG writer did it with Pillow.
    conditions : list of dicts from `PromptEmbeddings.blend`, one per image
    seeds : list of int, one per image; each image gets its own generator, so
        identical inputs give identical outputs whatever the batch.
    Returns images (n, 3, height, width) float32, whole numbers 0..255, on ``device``. This code never
    waits for the device; diffusers does a few times a call (docs/performance.md says where).
    """
    import torch

    from ..imaging import resize

    size = (images.shape[-1], images.shape[-2])
    factor = getattr(pipeline, "vae_scale_factor", 8)
    working = (resize.multiple_of(size[0], factor), resize.multiple_of(size[1], factor))
    generator_device = "cpu" if device.type == "mps" else device
    generators = [torch.Generator(generator_device).manual_seed(int(seed)) for seed in seeds]
    embeddings = {name: torch.cat([c[name] for c in conditions]) for name in conditions[0]}
    with torch.inference_mode():
        result = pipeline(
            image=resize.apply(images, resize.lanczos_resize(size, working)) / 255.0,
            strength=float(strength),
            guidance_scale=float(guidance),
            num_inference_steps=int(steps),
            generator=generators,
            output_type="pt",
            **embeddings,
        )
        # As output_type="np" and a uint8 conversion did: the pipeline's [0, 1] in float32, to 8 bits.
        output = (result.images.float() * 255.0).round().clamp(0, 255)
        return resize.apply(output, resize.lanczos_resize(working, size))


def images_from_pictures(pictures, device):
    """PIL images or (height, width, 3) uint8 arrays (one size) -> tensor (n, 3, height, width) float32
    images 0..255 on ``device``, as `run` takes them."""
    import numpy as np
    import torch

    stacked = np.stack([np.asarray(picture, dtype=np.uint8) for picture in pictures])
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).to(device=device, dtype=torch.float32)


def pictures_from_images(images):
    """Images (n, 3, height, width), float32 values 0..255 -> list of (height, width, 3) uint8 arrays on the CPU."""
    from ..imaging import resize

    return list(resize.to_pixels(images).cpu().numpy())


def byte_level_tokenizer(max_length):
    """A CLIP tokenizer whose vocabulary is every byte (no merges): any prompt tokenizes.

    Stands in for CLIP's 49408-token BPE vocabulary, which cannot be downloaded here.
    """
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    characters = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(characters)}
    vocab.update({c + "</w>": len(characters) + i for i, c in enumerate(characters)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def save_untrained_pipeline(folder, unet, vae, text_config, tokenizer, xl=False):
    """Assemble an img2img pipeline around untrained parts and write it with save_pretrained.

    The scheduler is sd-turbo's (Euler ancestral, trailing timesteps). xl: the SDXL
    layout, with a second text encoder (``text_config`` again, with a projection).
    """
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                timestep_spacing="trailing", steps_offset=1)
    if xl:
        pipeline = StableDiffusionXLImg2ImgPipeline(
            vae=vae, text_encoder=CLIPTextModel(text_config), text_encoder_2=CLIPTextModelWithProjection(text_config),
            tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
            requires_aesthetics_score=False, force_zeros_for_empty_prompt=True,
        )
    else:
        pipeline = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=CLIPTextModel(text_config),
                                                  tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                                  safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return folder


def make_tiny_pipeline(folder, seed=0, xl=False):
    """Write an untrained tiny img2img pipeline with save_pretrained (offline smoke tests).

    xl : an SDXL-layout pipeline (two text encoders, pooled embeddings, time ids)
    instead of the Stable Diffusion 1.x/2.x layout.
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    torch.manual_seed(seed)
    # Four VAE blocks, as in Stable Diffusion: latents are 1/8 of the image, so the
    # UNet's attention stays small at video sizes.
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), latent_channels=4,
        layers_per_block=1, norm_num_groups=4, sample_size=64,
    )
    tokenizer = byte_level_tokenizer(77)
    vocab = tokenizer.get_vocab()
    text_config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=16, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
    )
    blocks = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=2, norm_num_groups=4)
    if xl:
        # SDXL: both encoders' hidden states side by side (16 + 16), and the second's pooled
        # projection (16) plus six time ids of 8 each as the added conditioning.
        unet = UNet2DConditionModel(cross_attention_dim=32, addition_embed_type="text_time",
                                    addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 16,
                                    use_linear_projection=True, **blocks)
    else:
        unet = UNet2DConditionModel(cross_attention_dim=16, **blocks)
    save_untrained_pipeline(folder, unet, vae, text_config, tokenizer, xl=xl)
    with open(os.path.join(folder, "README.txt"), "w", encoding="utf-8") as stream:
        stream.write(f"UNTRAINED tiny {'SDXL' if xl else 'Stable Diffusion'} img2img stand-in for offline tests.\n")
    return folder

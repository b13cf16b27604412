"""The walk: a RenderPlan in, generator inputs (latents) out.

Owns the RenderPlan (`plan`, the seam between Blender and everything after it), the walk math
(`latents`: noise vectors, class vectors, truncation, per frame), prompt markers (`prompts`),
"setting follows curve" modulation (`modulation`) and the ImageNet class names (`imagenet`).

May import: nothing else.
"""

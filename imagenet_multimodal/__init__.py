"""imagenet-multimodal: ImageNet-1k with Flickr captions, Wikipedia class texts and relevance."""

__version__ = "0.1.0"

__all__ = ["ImagenetMultimodal", "ImagenetMultimodalConfig"]


def __getattr__(name: str):
    # the builder imports `datasets`; keep `import imagenet_multimodal` (and every CLI stage) light
    if name in __all__:
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'imagenet_multimodal' has no attribute {name!r}")

"""imagenet-multimodal: ImageNet-1k with Flickr captions, Wikipedia class texts and relevance."""

__version__ = "0.1.0"

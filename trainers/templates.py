"""Every hand-crafted prompt template of the project, in one place.

Keys are the registered dataset names (``cfg.DATASET.NAME``). ``{}`` is replaced by the class name.

- ``COOP_TEMPLATES``: CoOp's zero-shot CLIP templates (``CUSTOM_TEMPLATES`` of CoOp's ``zsclip.py``).
- ``KG_TEMPLATES``: the templates of KgCoOp's release, inherited by SEP's release: they differ from
  CoOp's for FGVCAircraft, DescribableTextures, StanfordCars and Food101.
"""

COOP_TEMPLATES: dict[str, str] = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
    "Demo": "a photo of a {}.",
}

KG_TEMPLATES: dict[str, str] = {
    **COOP_TEMPLATES,
    "FGVCAircraft": "a photo of an aircraft {}.",
    "DescribableTextures": "a photo of a {}, a type of texture.",
    "StanfordCars": "a photo of a {}, a type of car.",
    "Food101": "a photo of a {}, a type of food.",
}

# SEP's release uses KgCoOp's table unchanged.
SEP_TEMPLATES = KG_TEMPLATES

DEFAULT_TEMPLATE = "a photo of a {}."


def get_template(dataset_name: str, table: dict[str, str] = COOP_TEMPLATES) -> str:
    """The template of ``dataset_name`` in ``table`` (``DEFAULT_TEMPLATE`` for unknown datasets)."""
    return table.get(dataset_name, DEFAULT_TEMPLATE)

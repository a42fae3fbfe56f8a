"""The values SwarmUI's Every Gen and Manual Gen hooks fill their `%tag%`s with, as its
`OutpathFillHelper` computes them from a request: the request's time, hashes of its
prompts, its model and LoRAs in short form, and the image an output holds."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.utils import timezone

IMAGE_KEYS = ("image", "image_url", "url")
# File extensions SwarmUI drops from a model's name (T2IModel's natively supported ones,
# and .ckpt).
MODEL_EXTENSIONS = ("safetensors", "sft", "engine", "gguf", "ckpt")
NEGATIVE_PROMPT_KEYS = ("negativeprompt", "negative_prompt")  # SwarmUI's API id, its tag


def time_tags(moment: datetime) -> dict[str, str]:
    """SwarmUI's date and time tags, in TIME_ZONE, zero-padded as its formats write them."""
    local = timezone.localtime(moment)
    return {
        "year": f"{local.year:04d}", "month": f"{local.month:02d}",
        "month_name": local.strftime("%B"), "day": f"{local.day:02d}",
        "day_name": local.strftime("%A"), "hour": f"{local.hour:02d}",
        "minute": f"{local.minute:02d}", "second": f"{local.second:02d}",
        "millisecond": f"{local.microsecond // 1000:03d}",
    }  # fmt: skip


def quick_hash(text: str) -> str:
    """SwarmUI's QuickHash: the first 4 bytes of the text's SHA-256, as 8 hex digits."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:4].hex()


def simplify_model(name: str) -> str:
    """A model's name as SwarmUI's tags write it: `/` for `\\`, without its file extension."""
    name = name.replace("\\", "/").strip()
    stem, dot, extension = name.rpartition(".")
    return stem if dot and extension in MODEL_EXTENSIONS else name


def request_tags(request: dict) -> dict[str, str]:
    """`prompthash`, `negativeprompthash`, `model` and `loras` of a request's parameters
    (a job's input): a missing prompt hashes as empty, a missing model is `unknown`, the
    LoRAs (a list, or a comma-separated string) are joined with `-`; `negative_prompt`
    from SwarmUI's `negativeprompt` too."""
    prompt = _text(request.get("prompt"))
    negative = next((_text(request[k]) for k in NEGATIVE_PROMPT_KEYS if k in request), "")
    model = request.get("model")
    tags = {
        "prompthash": quick_hash(prompt),
        "negativeprompthash": quick_hash(negative),
        "model": simplify_model(model) if isinstance(model, str) and model else "unknown",
        "loras": "-".join(simplify_model(lora) for lora in _loras(request.get("loras"))),
    }
    if any(key in request for key in NEGATIVE_PROMPT_KEYS):
        tags["negative_prompt"] = negative  # SwarmUI's tag, whichever name the input used
    return tags


def _text(value) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _loras(value) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [lora.strip() for lora in value if isinstance(lora, str) and lora.strip()]


def image_of(output) -> str | None:
    """The image an output holds, as SwarmUI's `%image%`: an http(s) or `data:image/` URL,
    a site path (made absolute with SITE_URL), alone or under `image`, `image_url` or
    `url`."""
    if isinstance(output, dict):
        found = (
            image_of(output.get(key)) for key in IMAGE_KEYS if isinstance(output.get(key), str)
        )
        return next(filter(None, found), None)
    if not isinstance(output, str):
        return None
    if output.startswith(("http://", "https://", "data:image/")):
        return output
    if output.startswith("/") and not output.startswith("//"):
        return settings.SITE_URL + output.replace(" ", "%20")
    return None

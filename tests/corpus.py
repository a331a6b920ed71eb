"""A fixed corpus of token_counter inputs: texts, messages, tools, tool choices and images."""

import base64
import struct

# Models per encoding litellm chooses (checked against litellm in the tests, not assumed).
O200K_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "o3", "azure/gpt-4o")
CL100K_MODELS = ("gpt-3.5-turbo", "gpt-4", "claude-3-haiku-20240307", "", "some-unknown-model")
LEGACY_MODEL = "gpt-3.5-turbo-0301"
MODELS = (*O200K_MODELS, *CL100K_MODELS, LEGACY_MODEL)

TEXTS = {
    "empty": "",
    "ascii": "The quick brown fox jumps over the lazy dog.",
    "contractions": "It's what they'll say, I'd think; YOU'RE sure we've WON'T 'S 'll",
    "digits": "1 12 123 1234 12345 3.14159 2026-11-27 0x1F600 1,000,000",
    "multilingual": "Größe naïve façade — 日本語のテキスト、中文文本。한국어 텍스트 Ελληνικά русский עברית العربية हिन्दी",
    "emoji_zwj": "family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 skin 👍🏽 keycap 1️⃣ 😀😃😄",
    "combining": "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353a\u0354l\u0355g\u0356o",
    "code": "def f(x):\n    return {\"a\": [1, 2, 3], 'b': x ** 2}  # comment\n\tif x != None: pass\r\n",
    "whitespace_runs": "a" + " " * 50 + "b\n\n\n\n c\t\t\t d \r\n\r\n  \u00a0\u2003 e   ",
    "trailing_spaces": "ends with spaces      ",
    "long_word": "pneumonoultramicroscopicsilicovolcanoconiosis" * 40,
    "special_tokens": "<|endoftext|> <|fim_prefix|><|fim_middle|><|fim_suffix|> <|im_start|>user<|im_end|>",
    "chunk_boundary_multibyte": "é" * 1023 + "日本" + "x" * 1030,
    "four_kb": ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 70)[:4096],
    "hundred_kb": ("The meeting is at 10:30 — don't be late! Größe 日本 😀\n" * 2000)[:100_000],
    "hundred_kb_of_a": "a" * 100_000,
}


def _png(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">LL", width, height) + b"\x08\x02\x00\x00\x00"


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def _webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + b"\x0a\x00\x00\x00" + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + b"\x05\x00\x00\x00" + b"\x2f" + struct.pack("<I", bits)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def data_url(image: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(image).decode()}"


IMAGE_URLS = {
    "png_small": data_url(_png(64, 64)),
    "png_large": data_url(_png(4096, 2048)),
    "png_portrait": data_url(_png(1000, 3000)),
    "png_wide": data_url(_png(8000, 600)),
    "gif": data_url(_gif(800, 600), "image/gif"),
    "jpeg": data_url(_jpeg(1920, 1080), "image/jpeg"),
    "webp_vp8x": data_url(_webp_vp8x(1600, 1200), "image/webp"),
    "webp_vp8l": data_url(_webp_vp8l(900, 2500), "image/webp"),
    "truncated_png": data_url(b"\x89PNG\r\n\x1a\n\x00\x00"),
    "not_an_image": data_url(b"hello world"),
    "invalid_base64": "data:image/png;base64,@@@notbase64",
    "remote": "https://example.com/cat.png",
}

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer"},
                    "hourly": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "where": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}},
                    "anything": {},
                },
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "no_arguments", "description": "Takes nothing"}},
    {
        "type": "function",
        "function": {
            "name": "levels",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2, 3]}}},
        },
    },
]

TOOL_CHOICES = (
    None,
    "none",
    "auto",
    "required",
    {"type": "function", "function": {"name": "get_weather"}},
    {"type": "none"},
    {"name": "get_weather"},
    {"type": "function"},
)


def message_shapes() -> dict[str, list[dict]]:
    """Message lists covering every shape the Rust path serves."""
    image_parts = [
        {"type": "image_url", "image_url": {"url": url, "detail": detail}}
        for url in IMAGE_URLS.values()
        for detail in ("low", "auto")
    ]
    high_detail_parts = [
        {"type": "image_url", "image_url": {"url": IMAGE_URLS[name], "detail": "high"}}
        for name in (
            "png_small",
            "png_large",
            "png_portrait",
            "png_wide",
            "gif",
            "jpeg",
            "webp_vp8x",
            "webp_vp8l",
            "not_an_image",
        )
    ]
    return {
        "chat": CHAT,
        "every_text": [{"role": "user", "content": text} for text in TEXTS.values()],
        "names": [
            {"role": "system", "content": "Be brief.", "name": "policy"},
            {"role": "user", "content": "Hi", "name": "alice"},
            {"role": "user", "content": "Hello", "name": "bob_the_builder"},
        ],
        "none_content_and_tool_calls": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                    },
                    {"id": "call_3", "type": "function", "function": {"name": "no_arguments"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": '{"temperature": 25}', "name": "get_weather"},
        ],
        "legacy_function_call": [
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
            {"role": "function", "name": "get_weather", "content": "cold"},
        ],
        "content_parts": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe these."},
                    "a bare string part",
                    {"type": "text", "text": ""},
                    {"type": "thinking", "thinking": "Let me think about it."},
                    {"type": "redacted_thinking", "thinking": "xyz"},
                    {"type": "compaction", "content": "Earlier: the user asked about cats."},
                    {"type": "tool_reference", "tool_name": "get_weather"},
                ],
            }
        ],
        "images": [{"role": "user", "content": [{"type": "text", "text": "Look:"}, *image_parts]}],
        "images_high_detail": [{"role": "user", "content": high_detail_parts}],
        "image_url_as_string": [
            {"role": "user", "content": [{"type": "image_url", "image_url": IMAGE_URLS["png_large"]}]}
        ],
        "empty_list": [],
        "empty_message": [{}],
        "extra_keys": [
            {"role": "user", "content": "x", "metadata": {"a": 1}, "cache_control": {"type": "ephemeral"}, "weight": 3}
        ],
        "empty_provider_fields": [{"role": "assistant", "content": "ok", "provider_specific_fields": {}}],
    }

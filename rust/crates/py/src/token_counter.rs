//! `TokenCounter`: one resolved litellm model (encoding + message accounting), counting text and
//! whole message lists in one native call.
//!
//! The walk mirrors `_count_messages` / `_count_content_list` in
//! `litellm/litellm_core_utils/token_counter.py` for the shapes it can reproduce exactly; any other
//! shape raises `Unsupported` so the adapter hands the call to litellm, which then gives its own
//! result or its own exception.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySlice, PyString, PyTuple};
use rayon::prelude::*;

use token_counter::image::{self, Detail, ImageLimits};
use token_counter::{ChatAccounting, Encoding, Limits, TextCounter, Unsupported as Reason};

use crate::errors::Unsupported;
use crate::faults::{self, guarded};
use crate::stats::CallStats;

/// Above this many bytes of text the GIL is released while counting.
const RELEASE_GIL_BYTES: usize = 16 * 1024;
/// Above this many bytes a batch is counted on rayon's pool.
const PARALLEL_BYTES: usize = 64 * 1024;

fn unsupported(reason: Reason) -> PyErr {
    Unsupported::new_err(reason.as_str())
}

type Walk<T> = Result<T, Reason>;

/// A text longer than litellm's exact limit, counted from the samples litellm extrapolates from
/// (`None` for a text within the limit). The samples are sliced by code point in Python, so only
/// they are converted to UTF-8: not the whole text, which can be many times their size.
fn count_extrapolated(counter: &TextCounter, text: &Bound<'_, PyString>) -> Walk<Option<i64>> {
    let chars = text.len().map_err(|_| Reason::Input)?;
    if chars <= counter.limits.max_exact_chars {
        return Ok(None);
    }
    let py = text.py();
    let samples = counter
        .sample_bounds(chars)
        .into_iter()
        .map(|(start, end)| {
            let slice = PySlice::new(py, start as isize, end as isize, 1);
            text.get_item(slice)
                .and_then(|sample| Ok(sample.cast_into::<PyString>()?))
                .map_err(|_| Reason::Input)
        })
        .collect::<Walk<Vec<_>>>()?;
    let strs = samples
        .iter()
        .map(|sample| sample.to_str().map_err(|_| Reason::Input))
        .collect::<Walk<Vec<&str>>>()?;
    py.detach(|| counter.extrapolated(chars, strs.iter().copied()))
        .map(Some)
}

#[pyclass(frozen, module = "litellm_rust._native")]
pub struct TokenCounter {
    text: TextCounter,
    accounting: ChatAccounting,
    images: ImageLimits,
    /// The model's chat template renders tools itself (`chat_template_tool_section`): tools and
    /// tool_choice stay with litellm.
    template_tools: bool,
    /// litellm's `_format_function_definitions`: tool schemas are rendered by litellm, counted here.
    render_tools: Py<PyAny>,
    /// litellm's `convert_list_message_to_dict`, for message lists holding pydantic objects.
    message_dicts: Py<PyAny>,
    stats: Py<CallStats>,
}

/// A walk over messages: tokens counted so far, plus large strings kept to be counted at the end
/// with the GIL released.
struct Gathered<'a, 'py> {
    counter: &'a TextCounter,
    use_default_images: bool,
    tokens: i64,
    large_texts: Vec<Bound<'py, PyString>>,
    includes_system_message: bool,
}

impl<'py> Gathered<'_, 'py> {
    fn text(&mut self, text: Bound<'py, PyString>) -> Walk<()> {
        if let Some(tokens) = count_extrapolated(self.counter, &text)? {
            self.tokens += tokens;
            return Ok(());
        }
        let str = text.to_str().map_err(|_| Reason::Input)?;
        if str.len() > RELEASE_GIL_BYTES {
            self.large_texts.push(text);
        } else {
            self.tokens += self.counter.count(str)?;
        }
        Ok(())
    }

    /// `str(value)`, as litellm applies it to tool-call arguments and block text.
    fn display(&mut self, value: &Bound<'py, PyAny>) -> Walk<()> {
        let text = match value.cast::<PyString>() {
            Ok(text) => text.clone(),
            Err(_) => value.str().map_err(|_| Reason::Input)?,
        };
        self.text(text)
    }

    /// `str(value or "")` counted only when non-empty (text-like content blocks).
    fn display_if_truthy(&mut self, value: Option<Bound<'py, PyAny>>) -> Walk<()> {
        match value {
            Some(value) if value.is_truthy().map_err(|_| Reason::Input)? => self.display(&value),
            _ => Ok(()),
        }
    }
}

/// `dict.get(key)` with the key interned once per process rather than built per call.
macro_rules! get {
    ($dict:expr, $key:literal) => {
        $dict
            .get_item(pyo3::intern!($dict.py(), $key))
            .map_err(|_| Reason::Input)
    };
}

fn exact_dict<'a, 'py>(value: &'a Bound<'py, PyAny>) -> Walk<&'a Bound<'py, PyDict>> {
    value.cast_exact::<PyDict>().map_err(|_| Reason::Input)
}

fn exact_list<'a, 'py>(value: &'a Bound<'py, PyAny>) -> Walk<&'a Bound<'py, PyList>> {
    value.cast_exact::<PyList>().map_err(|_| Reason::Input)
}

/// Python's `str.isspace` for the characters `str.strip()` removes; Rust's `char::is_whitespace`
/// lacks the C0 separators U+001C..U+001F that Python strips.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// How a message list is counted, decided once from `token_counter`'s arguments.
struct Options<'py, 'a> {
    use_default_images: bool,
    with_extras: bool,
    definitions: Option<Bound<'py, PyString>>,
    tool_choice: Option<&'a Bound<'py, PyAny>>,
}

/// A list or tuple holding something other than plain dicts (pydantic `Message` objects).
fn has_message_objects(messages: &Bound<'_, PyAny>) -> bool {
    let items = match (
        messages.cast_exact::<PyList>(),
        messages.cast_exact::<PyTuple>(),
    ) {
        (Ok(list), _) => list.iter().collect::<Vec<_>>(),
        (_, Ok(tuple)) => tuple.iter().collect(),
        _ => return false,
    };
    items
        .iter()
        .any(|message| !message.is_exact_instance_of::<PyDict>())
}

impl TokenCounter {
    /// `token_counter(text=...)`: a string, or a list whose string items are joined.
    fn count_text(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<i64> {
        let joined;
        let text = if let Ok(text) = text.cast::<PyString>() {
            text.clone()
        } else if let Ok(items) = text.cast_exact::<PyList>() {
            let mut parts = Vec::with_capacity(items.len());
            for item in items.iter() {
                if let Ok(item) = item.cast::<PyString>() {
                    parts.push(
                        item.to_str()
                            .map_err(|_| unsupported(Reason::Input))?
                            .to_owned(),
                    );
                }
            }
            joined = PyString::new(py, &parts.concat());
            joined
        } else {
            return Err(unsupported(Reason::Input));
        };
        if let Some(tokens) = count_extrapolated(&self.text, &text).map_err(unsupported)? {
            return Ok(tokens);
        }
        let str = text.to_str().map_err(|_| unsupported(Reason::Input))?;
        let count = if str.len() > RELEASE_GIL_BYTES {
            py.detach(|| self.text.count(str))
        } else {
            self.text.count(str)
        };
        count.map_err(unsupported)
    }

    /// `token_counter(messages=...)` with its extras.
    fn count_messages<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        options: &Options<'py, '_>,
    ) -> PyResult<i64> {
        let mut gathered = Gathered {
            counter: &self.text,
            use_default_images: options.use_default_images,
            tokens: 0,
            large_texts: Vec::new(),
            includes_system_message: false,
        };
        self.gather_messages(messages, &mut gathered)
            .map_err(unsupported)?;
        if options.with_extras {
            gathered.tokens += ChatAccounting::REPLY_PRIMER;
            if let Some(definitions) = &options.definitions {
                gathered.tokens +=
                    ChatAccounting::tool_definition_overhead(gathered.includes_system_message);
                gathered.text(definitions.clone()).map_err(unsupported)?;
            }
            if let Some(choice) = options.tool_choice {
                gathered.tokens +=
                    tool_choice_tokens(choice, &mut gathered).map_err(unsupported)?;
            }
        }
        Ok(gathered.tokens + self.counts(py, &gathered.large_texts)?.iter().sum::<i64>())
    }

    /// litellm's own rendering of `tools`; its failure is litellm's to report.
    fn render<'py>(&self, tools: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
        let rendered = self
            .render_tools
            .bind(tools.py())
            .call1((tools,))
            .map_err(|_| unsupported(Reason::Input))?;
        rendered
            .cast_into::<PyString>()
            .map_err(|_| unsupported(Reason::Input))
    }

    /// One count per text: the GIL released above `RELEASE_GIL_BYTES` in all, rayon's pool above
    /// `PARALLEL_BYTES`.
    fn counts(&self, py: Python<'_>, texts: &[Bound<'_, PyString>]) -> PyResult<Vec<i64>> {
        let strs = texts
            .iter()
            .map(|text| text.to_str().map_err(|_| unsupported(Reason::Input)))
            .collect::<PyResult<Vec<&str>>>()?;
        let bytes: usize = strs.iter().map(|s| s.len()).sum();
        let count_all = || -> Result<Vec<i64>, Reason> {
            if bytes > PARALLEL_BYTES && strs.len() > 1 {
                strs.par_iter().map(|s| self.text.count(s)).collect()
            } else {
                strs.iter().map(|s| self.text.count(s)).collect()
            }
        };
        let counts = if bytes > RELEASE_GIL_BYTES {
            py.detach(count_all)
        } else {
            count_all()
        };
        counts.map_err(unsupported)
    }

    /// `_count_messages`: per-message overhead, every string value, names, tool-call arguments
    /// and content lists.
    fn gather_messages<'py>(
        &self,
        messages: &Bound<'py, PyAny>,
        gathered: &mut Gathered<'_, 'py>,
    ) -> Walk<()> {
        let items: Vec<Bound<'py, PyAny>> = if let Ok(list) = messages.cast_exact::<PyList>() {
            list.iter().collect()
        } else if let Ok(tuple) = messages.cast_exact::<PyTuple>() {
            tuple.iter().collect()
        } else {
            return Err(Reason::Input);
        };
        for message in &items {
            let message = exact_dict(message)?;
            gathered.tokens += self.accounting.tokens_per_message;
            for (key, value) in message.iter() {
                if value.is_none() {
                    continue;
                }
                let key = key.cast_exact::<PyString>().map_err(|_| Reason::Input)?;
                let key = key.to_str().map_err(|_| Reason::Input)?;
                if key == "role" {
                    // litellm: `message.get("role", None) == "system"`.
                    gathered.includes_system_message |= match value.cast::<PyString>() {
                        Ok(role) => role.to_str().map_err(|_| Reason::Input)? == "system",
                        Err(_) => value.eq("system").map_err(|_| Reason::Input)?,
                    };
                }
                self.gather_field(key, &value, gathered)?;
            }
        }
        Ok(())
    }

    fn gather_field<'py>(
        &self,
        key: &str,
        value: &Bound<'py, PyAny>,
        gathered: &mut Gathered<'_, 'py>,
    ) -> Walk<()> {
        match key {
            "tool_calls" => {
                for tool_call in exact_list(value)?.iter() {
                    let function =
                        get!(exact_dict(&tool_call)?, "function")?.ok_or(Reason::Input)?;
                    gather_arguments(exact_dict(&function)?, gathered)?;
                }
                Ok(())
            }
            "function_call" => gather_arguments(exact_dict(value)?, gathered),
            _ if value.is_instance_of::<PyString>() => {
                gathered.text(value.cast::<PyString>().map_err(|_| Reason::Input)?.clone())?;
                if key == "name" {
                    gathered.tokens += self.accounting.tokens_per_name;
                }
                Ok(())
            }
            "content" if value.is_instance_of::<PyList>() => {
                self.gather_content(exact_list(value)?, gathered)
            }
            // Only compaction blocks count here; a dict without them contributes nothing.
            "provider_specific_fields" => match value.cast_exact::<PyDict>() {
                Ok(fields)
                    if get!(fields, "compaction_blocks")?
                        .map_or(true, |blocks| blocks.is_none()) =>
                {
                    Ok(())
                }
                _ => Err(Reason::Input),
            },
            "search_results" if value.is_instance_of::<PyList>() => Err(Reason::Input),
            _ => Ok(()),
        }
    }

    /// `_count_content_list` for strings, text-like blocks, `image_url` and `tool_reference`.
    fn gather_content<'py>(
        &self,
        parts: &Bound<'py, PyList>,
        gathered: &mut Gathered<'_, 'py>,
    ) -> Walk<()> {
        for part in parts.iter() {
            if let Ok(text) = part.cast::<PyString>() {
                gathered.text(text.clone())?;
                continue;
            }
            let block = exact_dict(&part)?;
            let kind = get!(block, "type")?.ok_or(Reason::Input)?;
            let kind = kind.cast_exact::<PyString>().map_err(|_| Reason::Input)?;
            match kind.to_str().map_err(|_| Reason::Input)? {
                "text" => gathered.display_if_truthy(get!(block, "text")?)?,
                "thinking" | "redacted_thinking" => {
                    gathered.display_if_truthy(get!(block, "thinking")?)?
                }
                "compaction" => gathered.display_if_truthy(get!(block, "content")?)?,
                "tool_reference" => gathered.display_if_truthy(get!(block, "tool_name")?)?,
                "image_url" => {
                    gathered.tokens += self
                        .image_url_tokens(get!(block, "image_url")?, gathered.use_default_images)?
                }
                _ => return Err(Reason::Input),
            }
        }
        Ok(())
    }

    /// `_count_image_tokens`: a dict with `url` and `detail`, or a bare URL string.
    fn image_url_tokens(
        &self,
        image_url: Option<Bound<'_, PyAny>>,
        use_default: bool,
    ) -> Walk<i64> {
        let image_url = image_url.ok_or(Reason::Input)?;
        let (url, detail) = if let Ok(spec) = image_url.cast_exact::<PyDict>() {
            let detail = match get!(spec, "detail")? {
                None => Detail::Auto,
                Some(detail) => match detail
                    .cast_exact::<PyString>()
                    .map_err(|_| Reason::Input)?
                    .to_str()
                {
                    Ok("low") => Detail::Low,
                    Ok("high") => Detail::High,
                    Ok("auto") => Detail::Auto,
                    _ => return Err(Reason::Input),
                },
            };
            let url = get!(spec, "url")?.ok_or(Reason::Input)?;
            (
                url.cast_exact::<PyString>()
                    .map_err(|_| Reason::Input)?
                    .clone(),
                detail,
            )
        } else {
            let url = image_url
                .cast_exact::<PyString>()
                .map_err(|_| Reason::Input)?
                .clone();
            if url
                .to_str()
                .map_err(|_| Reason::Input)?
                .chars()
                .all(is_python_space)
            {
                return Err(Reason::Input);
            }
            (url, Detail::Auto)
        };
        let url = url.to_str().map_err(|_| Reason::Input)?;
        if url.is_empty() {
            return Err(Reason::Input);
        }
        image::image_tokens(url, detail, use_default, &self.images)
    }
}

/// `_count_function_call_tokens`: only `str(function.get("arguments", ""))` is counted.
fn gather_arguments<'py>(
    function: &Bound<'py, PyDict>,
    gathered: &mut Gathered<'_, 'py>,
) -> Walk<()> {
    match get!(function, "arguments")? {
        Some(arguments) => gathered.display(&arguments),
        None => Ok(()),
    }
}

fn constant<'py>(constants: &Bound<'py, PyDict>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    constants
        .get_item(name)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_owned()))
}

#[pymethods]
impl TokenCounter {
    /// `encoding`: `"cl100k_base"` or `"o200k_base"`; `constants`: litellm's constants by name.
    #[new]
    #[pyo3(signature = (encoding, *, legacy_accounting, template_tools, constants, render_tools, message_dicts, stats))]
    fn new(
        encoding: &str,
        legacy_accounting: bool,
        template_tools: bool,
        constants: &Bound<'_, PyDict>,
        render_tools: Py<PyAny>,
        message_dicts: Py<PyAny>,
        stats: Py<CallStats>,
    ) -> PyResult<Self> {
        let encoding: Encoding = encoding.parse().map_err(unsupported)?;
        let int = |name: &str| -> PyResult<u64> { constant(constants, name)?.extract() };
        let limits = Limits {
            chunk_chars: int("TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS")? as usize,
            max_exact_chars: int("TOKEN_COUNTER_MAX_EXACT_CHARS")? as usize,
            extrapolation_samples: int("EXTRAPOLATION_SAMPLES")? as usize,
        };
        let megabytes: f64 = constant(constants, "MAX_IMAGE_URL_DOWNLOAD_SIZE_MB")?.extract()?;
        let images = ImageLimits {
            base_tokens: 85,
            default_image_tokens: int("DEFAULT_IMAGE_TOKEN_COUNT")? as i64,
            default_width: int("DEFAULT_IMAGE_WIDTH")?,
            default_height: int("DEFAULT_IMAGE_HEIGHT")?,
            max_short_side: int("MAX_SHORT_SIDE_FOR_IMAGE_HIGH_RES")?,
            max_long_side: int("MAX_LONG_SIDE_FOR_IMAGE_HIGH_RES")?,
            tile_width: int("MAX_TILE_WIDTH")?,
            tile_height: int("MAX_TILE_HEIGHT")?,
            max_image_bytes: (megabytes * 1024.0 * 1024.0) as usize,
        };
        let accounting = if legacy_accounting {
            ChatAccounting::LEGACY_0301
        } else {
            ChatAccounting::CURRENT
        };
        Ok(TokenCounter {
            text: TextCounter::new(encoding, limits),
            accounting,
            images,
            template_tools,
            render_tools,
            message_dicts,
            stats,
        })
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        self.text.encoding.name()
    }

    /// litellm's `token_counter(model, text=..., messages=..., ...)` for this model, in one call.
    /// Raises `Unsupported` (reason in `args[0]`) wherever litellm must serve the call.
    // Positional-only, in `token_counter`'s own order: the hottest native call, where parsing
    // keywords would cost more than the rest of the boundary crossing.
    #[pyo3(signature = (text, messages, count_response_tokens, tools, tool_choice, use_default_image_token_count, /))]
    fn count(
        &self,
        text: &Bound<'_, PyAny>,
        messages: &Bound<'_, PyAny>,
        count_response_tokens: &Bound<'_, PyAny>,
        tools: &Bound<'_, PyAny>,
        tool_choice: &Bound<'_, PyAny>,
        use_default_image_token_count: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        guarded(|| {
            let py = text.py();
            let truthy = |value: &Bound<'_, PyAny>| {
                value.is_truthy().map_err(|_| unsupported(Reason::Input))
            };
            let count = if !text.is_none() {
                if !messages.is_none() || truthy(tools)? || truthy(tool_choice)? {
                    return Err(Unsupported::new_err("invalid_arguments")); // litellm raises ValueError
                }
                self.count_text(py, text)?
            } else if messages.is_none() {
                return Err(Unsupported::new_err("invalid_arguments"));
            } else {
                // litellm adds the reply primer, tools and tool_choice only for exactly `False`.
                let with_extras = count_response_tokens.is(&*pyo3::types::PyBool::new(py, false));
                let with_tools = with_extras && truthy(tools)?;
                let tool_choice = (with_extras && !tool_choice.is_none()).then_some(tool_choice);
                if (with_tools || tool_choice.is_some()) && self.template_tools {
                    return Err(Unsupported::new_err("chat_template_tools"));
                }
                let definitions = if with_tools {
                    Some(self.render(tools)?)
                } else {
                    None
                };
                let options = Options {
                    use_default_images: truthy(use_default_image_token_count)?,
                    with_extras,
                    definitions,
                    tool_choice,
                };
                match self.count_messages(py, messages, &options) {
                    Err(error)
                        if error.is_instance_of::<Unsupported>(py)
                            && has_message_objects(messages) =>
                    {
                        let converted = self
                            .message_dicts
                            .bind(py)
                            .call1((messages,))
                            .map_err(|_| unsupported(Reason::Input))?;
                        self.count_messages(py, &converted, &options)?
                    }
                    counted => counted?,
                }
            };
            self.stats.get().rust_call();
            Ok(count + faults::result_skew())
        })
    }

    /// `[token_counter(model, text=t) for t in texts]` in one call, in parallel for large batches.
    fn count_batch(&self, py: Python<'_>, texts: &Bound<'_, PyList>) -> PyResult<Vec<i64>> {
        guarded(|| {
            let texts = texts
                .iter()
                .map(|text| {
                    text.cast_exact::<PyString>()
                        .cloned()
                        .map_err(|_| unsupported(Reason::Input))
                })
                .collect::<PyResult<Vec<_>>>()?;
            let counts = self.counts(py, &texts)?;
            self.stats.get().rust_call();
            Ok(counts)
        })
    }
}

/// `_count_tool_choice`: `"none"` and `{"type": "none"}` cost 1, a named function 7 + its name.
fn tool_choice_tokens<'py>(
    choice: &Bound<'py, PyAny>,
    gathered: &mut Gathered<'_, 'py>,
) -> Walk<i64> {
    if let Ok(choice) = choice.cast::<PyString>() {
        return Ok(if choice.to_str().map_err(|_| Reason::Input)? == "none" {
            ChatAccounting::TOOL_CHOICE_NONE
        } else {
            0
        });
    }
    let Ok(choice) = choice.cast_exact::<PyDict>() else {
        // Other mappings match litellm's `match` patterns too; leave them to litellm.
        return if choice.is_none() {
            Ok(0)
        } else {
            Err(Reason::Input)
        };
    };
    let named =
        |name: Option<Bound<'py, PyAny>>, gathered: &mut Gathered<'_, 'py>| -> Walk<Option<i64>> {
            match name.and_then(|name| name.cast_into::<PyString>().ok()) {
                Some(name) => {
                    gathered.text(name)?;
                    Ok(Some(ChatAccounting::TOOL_CHOICE_NAMED))
                }
                None => Ok(None),
            }
        };
    if let Some(function) = get!(choice, "function")? {
        match function.cast_exact::<PyDict>() {
            Ok(function) => {
                if let Some(tokens) = named(get!(function, "name")?, gathered)? {
                    return Ok(tokens);
                }
            }
            Err(_) if function.cast::<pyo3::types::PyMapping>().is_ok() => {
                return Err(Reason::Input)
            }
            Err(_) => {}
        }
    }
    if let Some(kind) = get!(choice, "type")? {
        if kind
            .cast::<PyString>()
            .is_ok_and(|k| k.to_str().is_ok_and(|k| k == "none"))
        {
            return Ok(ChatAccounting::TOOL_CHOICE_NONE);
        }
        if !kind.is_instance_of::<PyString>() {
            return Err(Reason::Input);
        }
    }
    Ok(named(get!(choice, "name")?, gathered)?.unwrap_or(0))
}

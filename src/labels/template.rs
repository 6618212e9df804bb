//! The `defaultRule` template: the small subset of Go's `text/template` that
//! Traefik users write in it.
//!
//! Supported: text, `{{ .Name }}`, `{{ .ContainerName }}`, `{{ .Labels.key }}`,
//! `{{ index .Labels "key" }}`, the functions `normalize`, `lower`, `upper`,
//! `trim`, `replace old new s`, `trimPrefix p s`, `trimSuffix s str`, string
//! literals and pipelines (`{{ .Name | normalize }}`), and `{{-`/`-}}` trim
//! markers. Anything else is an error naming what is unsupported, so a
//! template never renders into a silently wrong rule.

use std::collections::BTreeMap;

/// What the template sees, as Traefik's docker provider exposes it.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    pub name: &'a str,
    pub container_name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    pub template: String,
    pub message: String,
}

/// A parsed template, ready to render many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Pipeline(Vec<Command>),
}

/// One command of a pipeline: a function call or a lone operand.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Call(Func, Vec<Operand>),
    Value(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Normalize,
    Index,
    Lower,
    Upper,
    Trim,
    Replace,
    TrimPrefix,
    TrimSuffix,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "normalize" => Func::Normalize,
            "index" => Func::Index,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "trim" => Func::Trim,
            "replace" => Func::Replace,
            "trimPrefix" => Func::TrimPrefix,
            "trimSuffix" => Func::TrimSuffix,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Func::Normalize | Func::Lower | Func::Upper | Func::Trim => 1,
            Func::Index | Func::TrimPrefix | Func::TrimSuffix => 2,
            Func::Replace => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.Name`, `.Labels`, `.Labels.key`: the field path after the dot.
    Field(Vec<String>),
    Str(String),
}

enum Value<'a> {
    Str(String),
    Labels(&'a BTreeMap<String, String>),
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let err = |message: String| TemplateError {
            template: source.to_string(),
            message,
        };
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            let mut inner = &rest[open + 2..];
            let close = inner
                .find("}}")
                .ok_or_else(|| err("unclosed action".into()))?;
            let after = &inner[close + 2..];
            inner = &inner[..close];
            if let Some(trimmed) = inner.strip_prefix('-') {
                text = text.trim_end();
                inner = trimmed;
            }
            let mut next = after;
            if let Some(trimmed) = inner.strip_suffix('-') {
                inner = trimmed;
                next = after.trim_start();
            }
            if !text.is_empty() {
                parts.push(Part::Text(text.to_string()));
            }
            parts.push(Part::Pipeline(parse_pipeline(inner).map_err(err)?));
            rest = next;
        }
        if rest.contains("}}") {
            return Err(err("unexpected `}}`".into()));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(&self, data: &TemplateData) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Pipeline(cmds) => {
                    let value = eval_pipeline(cmds, data).map_err(|message| TemplateError {
                        template: self.source.clone(),
                        message,
                    })?;
                    match value {
                        Value::Str(s) => out.push_str(&s),
                        Value::Labels(_) => {
                            return Err(TemplateError {
                                template: self.source.clone(),
                                message: "cannot print the whole .Labels map".into(),
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Traefik's `provider.Normalize`: runs of characters that are neither
/// letters nor digits become one `-`, and are trimmed at both ends.
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn tokenize(input: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            tokens.push("|".to_string());
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some((_, d)) = chars.next() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' && c == '"' {
                    match chars.next() {
                        Some((_, e)) => s.push(e),
                        None => break,
                    }
                } else {
                    s.push(d);
                }
            }
            if !closed {
                return Err(format!("unterminated string at column {}", i + 1));
            }
            // A marker the parser can tell from identifiers.
            tokens.push(format!("\"{s}"));
        } else if c == '(' || c == ')' {
            return Err("parenthesized expressions are not supported".into());
        } else {
            let mut s = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if d.is_whitespace() || d == '|' || d == '"' || d == '`' || d == '(' || d == ')' {
                    break;
                }
                s.push(d);
                chars.next();
            }
            tokens.push(s);
        }
    }
    Ok(tokens)
}

fn parse_operand(token: &str) -> Result<Operand, String> {
    if let Some(s) = token.strip_prefix('"') {
        return Ok(Operand::Str(s.to_string()));
    }
    if token == "." {
        return Err("`.` alone is not supported; use .Name".into());
    }
    if let Some(path) = token.strip_prefix('.') {
        let fields: Vec<String> = path.split('.').map(str::to_string).collect();
        if fields.iter().any(String::is_empty) {
            return Err(format!("malformed field `{token}`"));
        }
        match fields[0].as_str() {
            "Name" | "ContainerName" if fields.len() == 1 => {}
            "Labels" if fields.len() <= 2 => {}
            _ => return Err(format!("unknown field `{token}`")),
        }
        return Ok(Operand::Field(fields));
    }
    Err(format!("unsupported `{token}`"))
}

fn parse_pipeline(inner: &str) -> Result<Vec<Command>, String> {
    let tokens = tokenize(inner)?;
    if tokens.is_empty() {
        return Err("empty action".into());
    }
    let mut cmds = Vec::new();
    for (i, group) in tokens.split(|t| t == "|").enumerate() {
        let Some((head, args)) = group.split_first() else {
            return Err("empty command in pipeline".into());
        };
        let piped = usize::from(i > 0);
        let cmd = if head.starts_with('.') || head.starts_with('"') {
            if !args.is_empty() || i > 0 {
                return Err(format!("`{head}` is not a function"));
            }
            Command::Value(parse_operand(head)?)
        } else {
            let func = Func::from_name(head)
                .ok_or_else(|| format!("function `{head}` is not supported"))?;
            if args.len() + piped != func.arity() {
                return Err(format!(
                    "function `{head}` takes {} argument(s), got {}",
                    func.arity(),
                    args.len() + piped
                ));
            }
            let ops = args
                .iter()
                .map(|a| parse_operand(a))
                .collect::<Result<Vec<_>, _>>()?;
            Command::Call(func, ops)
        };
        cmds.push(cmd);
    }
    Ok(cmds)
}

fn operand_value<'a>(op: &Operand, data: &TemplateData<'a>) -> Value<'a> {
    match op {
        Operand::Str(s) => Value::Str(s.clone()),
        Operand::Field(f) => match (f[0].as_str(), f.get(1)) {
            ("Name", _) => Value::Str(data.name.to_string()),
            ("ContainerName", _) => Value::Str(data.container_name.to_string()),
            ("Labels", Some(key)) => Value::Str(data.labels.get(key).cloned().unwrap_or_default()),
            _ => Value::Labels(data.labels),
        },
    }
}

fn as_str(v: Value, func: &str) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Labels(_) => Err(format!("function `{func}` wants a string, not .Labels")),
    }
}

fn eval_pipeline<'a>(cmds: &[Command], data: &TemplateData<'a>) -> Result<Value<'a>, String> {
    let mut piped: Option<Value<'a>> = None;
    for cmd in cmds {
        let value = match cmd {
            Command::Value(op) => operand_value(op, data),
            Command::Call(func, ops) => {
                let mut args: Vec<Value<'a>> = ops.iter().map(|o| operand_value(o, data)).collect();
                if let Some(p) = piped.take() {
                    args.push(p);
                }
                call(*func, args)?
            }
        };
        piped = Some(value);
    }
    piped.ok_or_else(|| "empty pipeline".to_string())
}

fn call<'a>(func: Func, mut args: Vec<Value<'a>>) -> Result<Value<'a>, String> {
    let mut next_str = |name: &str| -> Result<String, String> {
        if args.is_empty() {
            return Err(format!("function `{name}`: missing argument"));
        }
        as_str(args.remove(0), name)
    };
    Ok(Value::Str(match func {
        Func::Normalize => normalize(&next_str("normalize")?),
        Func::Lower => next_str("lower")?.to_lowercase(),
        Func::Upper => next_str("upper")?.to_uppercase(),
        Func::Trim => next_str("trim")?.trim().to_string(),
        Func::Replace => {
            let (old, new, s) = (
                next_str("replace")?,
                next_str("replace")?,
                next_str("replace")?,
            );
            s.replace(&old, &new)
        }
        Func::TrimPrefix => {
            let (prefix, s) = (next_str("trimPrefix")?, next_str("trimPrefix")?);
            s.strip_prefix(prefix.as_str()).unwrap_or(&s).to_string()
        }
        Func::TrimSuffix => {
            let (suffix, s) = (next_str("trimSuffix")?, next_str("trimSuffix")?);
            s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string()
        }
        Func::Index => {
            if args.len() != 2 {
                return Err("function `index` takes 2 arguments".into());
            }
            let key = as_str(args.remove(1), "index")?;
            match args.remove(0) {
                Value::Labels(map) => map.get(&key).cloned().unwrap_or_default(),
                Value::Str(_) => return Err("function `index` wants .Labels first".into()),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(tpl: &str, name: &str, labels: &[(&str, &str)]) -> Result<String, TemplateError> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Template::parse(tpl)?.render(&TemplateData {
            name,
            container_name: name,
            labels: &labels,
        })
    }

    #[test]
    fn traefik_default_rule() {
        assert_eq!(
            render("Host(`{{ normalize .Name }}`)", "running_cdn", &[]).unwrap(),
            "Host(`running-cdn`)"
        );
    }

    #[test]
    fn normalize_matches_traefik() {
        assert_eq!(normalize("ludotm_ludotheque"), "ludotm-ludotheque");
        assert_eq!(normalize("__a..b--c__"), "a-b-c");
        assert_eq!(normalize("Web1"), "Web1");
        assert_eq!(normalize("é_x"), "é-x");
    }

    #[test]
    fn fields_index_and_pipelines() {
        assert_eq!(
            render("Host(`{{ .Name }}.example.com`)", "web", &[]).unwrap(),
            "Host(`web.example.com`)"
        );
        assert_eq!(
            render(
                r#"Host(`{{ index .Labels "com.docker.stack.namespace" }}.{{ .Name | normalize | lower }}`)"#,
                "App_X",
                &[("com.docker.stack.namespace", "shop")]
            )
            .unwrap(),
            "Host(`shop.app-x`)"
        );
        assert_eq!(
            render("{{ .Labels.tenant }}", "x", &[("tenant", "t1")]).unwrap(),
            "t1"
        );
        assert_eq!(
            render(r#"{{ index .Labels "missing" }}"#, "x", &[]).unwrap(),
            ""
        );
        assert_eq!(
            render(r#"{{ replace "_" "." .Name }}"#, "a_b", &[]).unwrap(),
            "a.b"
        );
        assert_eq!(
            render(r#"{{ trimPrefix "app_" .Name }}"#, "app_web", &[]).unwrap(),
            "web"
        );
        assert_eq!(render("a {{- .Name -}} b", "x", &[]).unwrap(), "axb");
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        for bad in [
            "{{ .Name",
            "{{ sha1 .Name }}",
            "{{ .Unknown }}",
            "{{ if .Name }}x{{ end }}",
            "{{ normalize }}",
            "{{ .Labels }}",
            "{{ (normalize .Name) }}",
            "x }}",
            r#"{{ index .Name "a" }}"#,
        ] {
            assert!(render(bad, "x", &[]).is_err(), "{bad} should fail");
        }
        let e = render("{{ sha1 .Name }}", "x", &[]).unwrap_err();
        assert!(e.to_string().contains("sha1"), "{e}");
    }
}

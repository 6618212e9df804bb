//! Logging setup from the static configuration: the application log
//! (`log.level`, `log.format`, `log.filePath`) and the access log
//! (`accessLog.filePath`), which travels as `tracing` events on its own target.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, fmt};

use crate::config::static_config::{AccessLogFormat, LogFormat, LogLevel, StaticConfig};
use crate::proxy::access_log::{self, Format};

/// Nothing to hold today; returned so callers keep the logging alive
/// explicitly if a buffered writer is introduced.
pub struct LogGuard;

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn level_directive(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => "error",
    }
}

pub fn access_format(f: AccessLogFormat) -> Format {
    match f {
        AccessLogFormat::Json => Format::Json,
        AccessLogFormat::Common | AccessLogFormat::GenericClf => Format::Common,
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

fn writer_layer<W>(writer: W, json: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    if json {
        fmt::layer().json().with_writer(writer).boxed()
    } else {
        fmt::layer().with_ansi(false).with_writer(writer).boxed()
    }
}

/// Installs the global subscriber. `ESCALE_LOG` (an `EnvFilter` directive)
/// overrides `log.level`.
pub fn init(config: &StaticConfig) -> Result<LogGuard, String> {
    let level = level_directive(config.log.level);
    let filter = EnvFilter::try_from_env("ESCALE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},hyper=warn,bollard=warn")));
    let filter = filter.add_directive(
        format!("{}=off", access_log::TARGET)
            .parse()
            .map_err(|e| format!("bad log filter: {e}"))?,
    );
    let json = config.log.format == LogFormat::Json;
    let app_layer = match &config.log.file_path {
        Some(path) => writer_layer(Mutex::new(open_append(path)?), json),
        None => writer_layer(std::io::stdout, json),
    }
    .with_filter(filter)
    .boxed();

    let mut layers: Vec<BoxedLayer> = vec![app_layer];
    if let Some(al) = &config.access_log {
        let targets = Targets::new().with_target(access_log::TARGET, Level::INFO);
        let raw = |w: BoxedWriter| {
            fmt::layer()
                .without_time()
                .with_level(false)
                .with_target(false)
                .with_ansi(false)
                .with_writer(w)
                .with_filter(targets.clone())
                .boxed()
        };
        let writer: BoxedWriter = match &al.file_path {
            Some(path) => BoxedWriter::File(std::sync::Arc::new(Mutex::new(open_append(path)?))),
            None => BoxedWriter::Stdout,
        };
        layers.push(raw(writer));
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogGuard)
}

/// Where access log lines go.
#[derive(Clone)]
enum BoxedWriter {
    Stdout,
    File(std::sync::Arc<Mutex<std::fs::File>>),
}

/// One line, written whole under the file's lock.
enum LineWriter {
    Stdout(std::io::Stdout),
    File(std::sync::Arc<Mutex<std::fs::File>>),
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            LineWriter::Stdout(s) => s.write(buf),
            LineWriter::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineWriter::Stdout(s) => s.flush(),
            LineWriter::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).flush(),
        }
    }
}

impl<'w> fmt::MakeWriter<'w> for BoxedWriter {
    type Writer = LineWriter;

    fn make_writer(&'w self) -> LineWriter {
        match self {
            BoxedWriter::Stdout => LineWriter::Stdout(std::io::stdout()),
            BoxedWriter::File(f) => LineWriter::File(f.clone()),
        }
    }
}

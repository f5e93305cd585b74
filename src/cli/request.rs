//! The request options of `tokenprune select`, built from the request schema
//! (`tokenprune::schema`): one flag per option, with the schema's names, help and defaults.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use tokenprune::schema::{self, Field, Kind, Surface, Value, Values};
use tokenprune::{Error, Grid, Result};

/// The options as given on the command line, before files are read.
#[derive(Debug, Clone)]
pub struct RequestArgs {
    given: Vec<(&'static Field, Given)>,
}

#[derive(Debug, Clone)]
enum Given {
    Number(f64),
    Name(String),
    Flag,
    Grid(Grid),
    File(PathBuf),
}

fn arg(f: &'static Field) -> Arg {
    let mut a = Arg::new(f.name).long(f.cli).help(f.doc);
    for alias in f.aliases {
        a = a.visible_alias(*alias);
    }
    a = match f.kind {
        Kind::Number => a.value_parser(clap::value_parser!(f64)).value_name("X"),
        Kind::Count => a.value_parser(clap::value_parser!(u32)).value_name("N"),
        Kind::Seed => a.value_parser(clap::value_parser!(u64)).value_name("SEED"),
        Kind::Choice(names) => a.value_parser(clap::builder::PossibleValuesParser::new(names)),
        Kind::Flag => a.action(ArgAction::SetTrue),
        Kind::Grid => a
            .value_parser(clap::value_parser!(String))
            .value_name("T,H,W"),
        Kind::PerToken | Kind::Rows | Kind::Vectors => a
            .value_parser(clap::value_parser!(PathBuf))
            .value_name("FILE.npy"),
    };
    if let (Some(d), false) = (f.default, f.kind == Kind::Flag) {
        a = a.help(format!("{} [default: {d}]", f.doc));
    }
    a
}

impl clap::FromArgMatches for RequestArgs {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut given = Vec::new();
        for f in schema::fields() {
            let g = match f.kind {
                Kind::Number => m.get_one::<f64>(f.name).map(|x| Given::Number(*x)),
                Kind::Count => m.get_one::<u32>(f.name).map(|x| Given::Number(*x as f64)),
                Kind::Seed => m.get_one::<u64>(f.name).map(|x| Given::Number(*x as f64)),
                Kind::Choice(_) => m.get_one::<String>(f.name).map(|s| Given::Name(s.clone())),
                Kind::Flag => m.get_flag(f.name).then_some(Given::Flag),
                Kind::Grid => match m.get_one::<String>(f.name) {
                    Some(s) => Some(Given::Grid(s.parse().map_err(|e: Error| {
                        clap::Error::raw(clap::error::ErrorKind::ValueValidation, e.to_string())
                    })?)),
                    None => None,
                },
                Kind::PerToken | Kind::Rows | Kind::Vectors => {
                    m.get_one::<PathBuf>(f.name).map(|p| Given::File(p.clone()))
                }
            };
            if let Some(g) = g {
                given.push((f, g));
            }
        }
        Ok(RequestArgs { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for RequestArgs {
    fn augment_args(cmd: Command) -> Command {
        let cmd = schema::fields().fold(cmd, |cmd, f| {
            let a = arg(f);
            cmd.arg(if f.name == "method" {
                a.required(true)
            } else {
                a
            })
        });
        cmd.group(ArgGroup::new("budget").required(true).args([
            "keep",
            "keep_ratio",
            "prune_ratio",
        ]))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// An array input read from its file, and how much of it each batch item takes (`None`:
/// all of it, shared by every item).
pub struct Loaded {
    field: &'static Field,
    data: Vec<f32>,
    per_item: Option<usize>,
}

impl RequestArgs {
    /// Whether per-frame budgets were asked for.
    pub fn per_frame(&self) -> bool {
        self.given
            .iter()
            .any(|(f, g)| f.name == "per_frame" && matches!(g, Given::Flag))
    }

    /// Reads the array inputs for `items` pools of `n` tokens (`batch`: the features are
    /// `[items, N, D]`): per-token `[N]` (or `[1, N]`; `[B, N]` for a batch), rows `[N, De]`
    /// (`[B, N, De]`), vectors `[M, De]` or `[De]` shared (or `[B, M, De]`, one per item).
    pub fn load(&self, items: usize, n: usize, batch: bool) -> Result<Vec<Loaded>> {
        let mut out = Vec::new();
        for (f, g) in &self.given {
            let Given::File(path) = g else { continue };
            let t = tokenprune::io::load(path, None)?;
            let shape = t.shape.as_slice();
            let bad = |want: &str| {
                Error::Shape(format!(
                    "{}: {} must have shape {want} to match the features, got {:?}",
                    path.display(),
                    f.display(Surface::Cli),
                    t.shape
                ))
            };
            let per_item = match f.kind {
                Kind::PerToken => {
                    let want: &[usize] = if batch { &[items, n] } else { &[n] };
                    let row = !batch && shape == [1, n];
                    if shape != want && !row {
                        return Err(Error::Shape(format!(
                            "{}: scores must have shape {want:?} to match the features, got {:?}",
                            path.display(),
                            t.shape
                        )));
                    }
                    Some(n)
                }
                Kind::Rows => match (batch, shape) {
                    (false, [r, de]) if *r == n && *de > 0 => Some(n * de),
                    (true, [b, r, de]) if *b == items && *r == n && *de > 0 => Some(n * de),
                    _ => return Err(bad(if batch { "[B, N, De]" } else { "[N, De]" })),
                },
                _ => match shape {
                    [_] | [_, _] => None,
                    [b, m, de] if batch && *b == items && m * de > 0 => Some(m * de),
                    _ => return Err(bad("[M, De] or [De] (or [B, M, De] for a batch)")),
                },
            };
            out.push(Loaded {
                field: f,
                data: t.data,
                per_item,
            });
        }
        Ok(out)
    }

    /// The options of batch item `b`, array inputs sliced from `loaded`.
    pub fn values<'a>(&self, loaded: &'a [Loaded], b: usize) -> Values<'a> {
        let mut v = Values::new(Surface::Cli);
        for (f, g) in &self.given {
            match g {
                Given::Number(x) => v.set(f, Value::Number(*x)),
                Given::Flag => v.set(f, Value::Flag(true)),
                Given::Grid(grid) => v.set(f, Value::Grid(*grid)),
                // Choices are checked by clap against the schema's names: the static one.
                Given::Name(name) => {
                    if let Kind::Choice(names) = f.kind {
                        if let Some(n) = names.iter().find(|n| *n == name) {
                            v.set(f, Value::Name(n));
                        }
                    }
                }
                Given::File(_) => {}
            }
        }
        for l in loaded {
            let data = match l.per_item {
                Some(len) => &l.data[b * len..(b + 1) * len],
                None => &l.data[..],
            };
            v.set(l.field, Value::Floats(data));
        }
        v
    }
}

//! `ocistow untag DIR:TAG`: remove a tag; the content stays until `gc`.

use anyhow::Result;
use ocistow_store::{Error, ReferenceProblem, Target};

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:TAG
    reference: String,
}

pub fn run(ctx: &Context, _out: &mut Output, args: &Args) -> Result<Outcome> {
    let r = ctx.reference(&args.reference)?;
    let Target::Tag(tag) = &r.target else {
        return Err(Error::InvalidReference {
            input: args.reference.clone(),
            problem: ReferenceProblem::WrongForm {
                expected: "untag needs DIR:TAG",
            },
        }
        .into());
    };
    let layout = ctx.open(&r)?;
    for d in layout.untag(tag)? {
        eprintln!("Untagged {tag} ({})", d.digest());
    }
    Ok(Outcome::Ok)
}

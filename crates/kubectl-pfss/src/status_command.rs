//! `kubectl pfss status`: reads the resources and prints [`crate::status`]'s view of them.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;

use crate::cli::{Output, StatusArgs};
use crate::resources;
use crate::status;

pub async fn run(args: StatusArgs, out: &mut impl Write) -> Result<()> {
    let (client, namespace) = resources::connect(args.target.namespace.as_deref()).await?;
    let resources = if let Some(name) = &args.name {
        vec![resources::get(&client, &namespace, name).await?]
    } else {
        let scope = (!args.all_namespaces).then_some(namespace.as_str());
        resources::list(&client, scope).await?
    };
    let now = Utc::now();
    let views: Vec<status::ResourceView> = resources.iter().map(|r| status::view(r, now)).collect();
    match args.output {
        Output::Table => status::write_table(out, &views, now)?,
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&views)?)?,
    }
    Ok(())
}

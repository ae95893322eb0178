//! `glaux workgroup create|list|update|delete`: the warehouse's workgroups, which every front
//! end applies (scan limit per query, price, enforced output location, daily budget).

use clap::{Args, Subcommand};
use glaux_engine::{ResultConfiguration, WorkGroup, WorkGroups};

#[derive(Args)]
pub struct WorkgroupArgs {
    /// The warehouse whose workgroups these are.
    #[arg(long, env = "GLAUX_WAREHOUSE", default_value = "./warehouse", global = true)]
    warehouse: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a workgroup.
    Create {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List the workgroups as JSON lines (Athena's WorkGroup shape).
    List,
    /// Change some settings of a workgroup.
    Update {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Delete a workgroup (`primary` stays).
    Delete { name: String },
}

#[derive(Args)]
struct Settings {
    #[arg(long)]
    description: Option<String>,
    /// Cancel a query the moment it has scanned more than this many bytes.
    #[arg(long)]
    bytes_scanned_cutoff: Option<u64>,
    /// Dollars per TiB billed instead of $5.
    #[arg(long)]
    price_per_tib: Option<f64>,
    /// Where results go (s3://… or a folder).
    #[arg(long)]
    output_location: Option<String>,
    /// The workgroup's output location wins over the query's.
    #[arg(long)]
    enforce: Option<bool>,
    /// Bytes a UTC day past which queries carry a warning (they are not stopped).
    #[arg(long)]
    daily_budget: Option<u64>,
    /// ENABLED or DISABLED.
    #[arg(long)]
    state: Option<String>,
}

impl Settings {
    /// Checked before anything is written, so a bad flag changes nothing.
    fn check(&self) -> Result<(), String> {
        match self.state.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ENABLED") | Some("DISABLED") => Ok(()),
            Some(other) => Err(format!("--state {other}: expected ENABLED or DISABLED")),
        }
    }

    fn apply(self, group: &mut WorkGroup) {
        let c = &mut group.configuration;
        if let Some(d) = self.description {
            group.description = Some(d);
        }
        if let Some(s) = self.state {
            group.state = s.to_ascii_uppercase();
        }
        c.bytes_scanned_cutoff_per_query = self.bytes_scanned_cutoff.or(c.bytes_scanned_cutoff_per_query);
        c.price_per_tib_usd = self.price_per_tib.or(c.price_per_tib_usd);
        c.daily_bytes_scanned_budget = self.daily_budget.or(c.daily_bytes_scanned_budget);
        if let Some(location) = self.output_location {
            c.result_configuration = Some(ResultConfiguration { output_location: Some(location) });
        }
        if let Some(enforce) = self.enforce {
            c.enforce_work_group_configuration = enforce;
        }
    }
}

pub fn run(args: WorkgroupArgs) -> Result<(), String> {
    let groups = WorkGroups::open(&args.warehouse).map_err(|e| e.to_string())?;
    match args.command {
        Command::Create { name, settings } => {
            settings.check()?;
            let mut group = WorkGroup::new(&name);
            settings.apply(&mut group);
            groups.create(group).map_err(|e| e.to_string())
        }
        Command::List => {
            for g in groups.list().map_err(|e| e.to_string())? {
                println!("{}", serde_json::to_string(&g).map_err(|e| e.to_string())?);
            }
            Ok(())
        }
        Command::Update { name, settings } => {
            settings.check()?;
            groups.update(&name, |g| settings.apply(g)).map_err(|e| e.to_string()).map(|_| ())
        }
        Command::Delete { name } => groups.delete(&name).map_err(|e| e.to_string()),
    }
}

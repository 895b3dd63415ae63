//! `oxka acls create|list|delete`: ACLs with kafka-acls.sh's flags
//! (`--allow-principal`, `--deny-principal`, `--operation`, `--topic`,
//! `--group`, `--cluster`, `--transactional-id`, `--resource-pattern-type`,
//! `--allow-host`, `--deny-host`, `--principal` for list), through
//! CreateAcls / DescribeAcls / DeleteAcls, with kafka-acls.sh's rules: list
//! narrows by resource and `--principal` only; delete needs a resource and
//! removes either all its ACLs or exactly the entries the allow/deny flags
//! name (operation default All, host default `*`).

use clap::{Args, Subcommand, ValueEnum};
use oxka_client::acl::{
    self, operation_code, operation_name, pattern_type, pattern_type_name, permission_type,
    permission_type_name, resource_type, resource_type_name, AclBinding, AclBindingFilter,
};
use oxka_client::Admin;
use serde_json::json;

use super::util::{print_json, print_table};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct AclsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: AclsCmd,
}

#[derive(Subcommand, Debug)]
pub enum AclsCmd {
    /// Add ACLs (kafka-acls --add): each principal × operation × resource.
    #[command(alias = "add")]
    Create(AclSpec),
    /// List ACLs (kafka-acls --list): all, or those on the given resources.
    List(AclSpec),
    /// Remove ACLs (kafka-acls --remove): all ACLs of the resources, or
    /// those the allow/deny flags name.
    #[command(alias = "remove")]
    Delete(AclSpec),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PatternArg {
    Literal,
    Prefixed,
    Match,
    Any,
}

#[derive(Args, Debug)]
pub struct AclSpec {
    /// Principal(s) to allow, e.g. User:alice (repeatable).
    #[arg(long = "allow-principal")]
    allow_principal: Vec<String>,
    /// Principal(s) to deny (repeatable).
    #[arg(long = "deny-principal")]
    deny_principal: Vec<String>,
    /// Principal(s) to list the ACLs of (list only; repeatable).
    #[arg(long)]
    principal: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable;
    /// create defaults to All).
    #[arg(long)]
    operation: Vec<String>,
    /// Hosts the allow entries apply to (default `*`).
    #[arg(long = "allow-host")]
    allow_host: Vec<String>,
    /// Hosts the deny entries apply to (default `*`).
    #[arg(long = "deny-host")]
    deny_host: Vec<String>,
    /// Topic(s) (repeatable; `*` for all).
    #[arg(long)]
    topic: Vec<String>,
    /// Consumer group(s) (repeatable).
    #[arg(long)]
    group: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// Transactional id(s) (repeatable).
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// literal (default), prefixed; list and delete also take match and any.
    #[arg(long = "resource-pattern-type", value_enum, default_value = "literal")]
    resource_pattern_type: PatternArg,
}

impl AclSpec {
    fn resources(&self) -> Vec<(i8, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|t| (resource_type::TOPIC, t.clone())));
        out.extend(self.group.iter().map(|g| (resource_type::GROUP, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (resource_type::TRANSACTIONAL_ID, t.clone())),
        );
        if self.cluster {
            out.push((resource_type::CLUSTER, acl::CLUSTER_NAME.to_string()));
        }
        out
    }

    fn pattern(&self) -> i8 {
        match self.resource_pattern_type {
            PatternArg::Literal => pattern_type::LITERAL,
            PatternArg::Prefixed => pattern_type::PREFIXED,
            PatternArg::Match => pattern_type::MATCH,
            PatternArg::Any => pattern_type::ANY,
        }
    }

    fn operations(&self, default: i8) -> Result<Vec<i8>, CliError> {
        if self.operation.is_empty() {
            return Ok(vec![default]);
        }
        self.operation
            .iter()
            .map(|o| {
                operation_code(o).ok_or_else(|| CliError::Usage(format!("unknown operation {o}")))
            })
            .collect()
    }

    /// (principal, host, permission) entries from the allow and deny flags.
    fn entries(&self) -> Vec<(String, String, i8)> {
        let hosts = |h: &[String]| -> Vec<String> {
            if h.is_empty() {
                vec!["*".to_string()]
            } else {
                h.to_vec()
            }
        };
        let mut out = Vec::new();
        for p in &self.allow_principal {
            for h in hosts(&self.allow_host) {
                out.push((p.clone(), h, permission_type::ALLOW));
            }
        }
        for p in &self.deny_principal {
            for h in hosts(&self.deny_host) {
                out.push((p.clone(), h, permission_type::DENY));
            }
        }
        out
    }

    /// The bindings `create` adds.
    fn bindings(&self) -> Result<Vec<AclBinding>, CliError> {
        if !matches!(
            self.resource_pattern_type,
            PatternArg::Literal | PatternArg::Prefixed
        ) {
            return Err(CliError::Usage(
                "create takes --resource-pattern-type literal or prefixed".into(),
            ));
        }
        let resources = self.resources();
        let entries = self.entries();
        if resources.is_empty() || entries.is_empty() {
            return Err(CliError::Usage(
                "give a resource (--topic, --group, --cluster, --transactional-id) and --allow-principal or --deny-principal".into(),
            ));
        }
        let ops = self.operations(acl::operation_code("All").unwrap_or(2))?;
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (principal, host, perm) in &entries {
                for op in &ops {
                    out.push(AclBinding {
                        resource_type: *rt,
                        resource_name: name.clone(),
                        pattern_type: self.pattern(),
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission_type: *perm,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The filters `list` matches with (kafka-acls --list): each resource
    /// (or every resource) × each `--principal` (or any); entries are not
    /// narrowed by the allow/deny flags.
    fn list_filters(&self) -> Vec<AclBindingFilter> {
        let principals: Vec<Option<String>> = if self.principal.is_empty() {
            vec![None]
        } else {
            self.principal.iter().cloned().map(Some).collect()
        };
        self.resource_filters(true)
            .into_iter()
            .flat_map(|r| {
                principals.iter().map(move |p| AclBindingFilter {
                    principal: p.clone(),
                    ..r.clone()
                })
            })
            .collect()
    }

    /// The filters `delete` removes with (kafka-acls --remove): a
    /// resource is required; without `--allow-principal`/`--deny-principal`
    /// every ACL of the resources, otherwise exactly the entries the flags
    /// name (principal × operation, default All × host, default `*`), as
    /// `create` would have added them.
    fn delete_filters(&self) -> Result<Vec<AclBindingFilter>, CliError> {
        if !self.principal.is_empty() {
            return Err(CliError::Usage(
                "The --principal option is only available with list".into(),
            ));
        }
        let resources = self.resource_filters(false);
        if resources.is_empty() {
            return Err(CliError::Usage(
                "You must provide at least one resource: --topic, --group, --cluster or --transactional-id".into(),
            ));
        }
        let entries = self.entries();
        if entries.is_empty() {
            return Ok(resources);
        }
        let ops = self.operations(acl::operation_code("All").unwrap_or(2))?;
        let mut out = Vec::new();
        for r in &resources {
            for (p, h, perm) in &entries {
                for op in &ops {
                    out.push(AclBindingFilter {
                        principal: Some(p.clone()),
                        host: Some(h.clone()),
                        permission_type: *perm,
                        operation: *op,
                        ..r.clone()
                    });
                }
            }
        }
        Ok(out)
    }

    /// One filter per resource flag (any entry); with `or_any`, the
    /// filter of every resource when none is given.
    fn resource_filters(&self, or_any: bool) -> Vec<AclBindingFilter> {
        let any = AclBindingFilter::any();
        let mut out: Vec<AclBindingFilter> = self
            .resources()
            .into_iter()
            .map(|(rt, name)| AclBindingFilter {
                resource_type: rt,
                resource_name: Some(name),
                pattern_type: self.pattern(),
                ..any.clone()
            })
            .collect();
        if out.is_empty() && or_any {
            out.push(any);
        }
        out
    }
}

fn print_bindings(output: Output, bindings: &[AclBinding]) {
    if output == Output::Json {
        print_json(&json!(bindings
            .iter()
            .map(|b| json!({
                "resource_type": resource_type_name(b.resource_type),
                "resource_name": b.resource_name,
                "pattern_type": pattern_type_name(b.pattern_type),
                "principal": b.principal,
                "host": b.host,
                "operation": operation_name(b.operation),
                "permission_type": permission_type_name(b.permission_type),
            }))
            .collect::<Vec<_>>()));
        return;
    }
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            vec![
                resource_type_name(b.resource_type).to_string(),
                b.resource_name.clone(),
                pattern_type_name(b.pattern_type).to_string(),
                b.principal.clone(),
                b.host.clone(),
                operation_name(b.operation).to_string(),
                permission_type_name(b.permission_type).to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "RESOURCE_TYPE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    );
}

pub async fn run(args: AclsArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        AclsCmd::Create(spec) => {
            let bindings = spec.bindings()?;
            let results = admin.create_acls(&bindings).await?;
            let mut failed = None;
            for (b, r) in bindings.iter().zip(results) {
                if let Err(e) = r {
                    eprintln!(
                        "{} {} on {}:{}: {e}",
                        permission_type_name(b.permission_type),
                        operation_name(b.operation),
                        resource_type_name(b.resource_type),
                        b.resource_name
                    );
                    failed = Some(e);
                }
            }
            match failed {
                Some(e) => Err(e.into()),
                None => {
                    eprintln!("created {} ACL(s)", bindings.len());
                    Ok(())
                }
            }
        }
        AclsCmd::List(spec) => {
            let mut all = Vec::new();
            for f in spec.list_filters() {
                for b in admin.describe_acls(&f).await? {
                    if !all.contains(&b) {
                        all.push(b);
                    }
                }
            }
            all.sort();
            print_bindings(output, &all);
            Ok(())
        }
        AclsCmd::Delete(spec) => {
            let filters = spec.delete_filters()?;
            let mut removed = Vec::new();
            let mut failed = None;
            for r in admin.delete_acls(&filters).await? {
                match r {
                    Ok(b) => removed.extend(b),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = Some(e);
                    }
                }
            }
            print_bindings(output, &removed);
            eprintln!("deleted {} ACL(s)", removed.len());
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
    }
}

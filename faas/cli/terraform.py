"""``--from-terraform``: an endpoint's config.yaml and a client's profile from the outputs of the
Terraform site module (infra/terraform/): the JSON that ``terraform output -json`` prints.

The module's ``faas`` output holds everything both need: the store URL, each endpoint's queue URL
and site role (each endpoint has its own, reaching only its own queues), ``max_receives`` and
``visibility_timeout`` (which must equal the queues' own attributes: the endpoint daemon
re-declares its queues with them when it starts), the reply queue prefix the client role is
allowed, and the client role. AWS credentials stay boto3's business: the outputs only name the
roles, and the commands print the ``~/.aws/config`` lines that assume them.
"""
from __future__ import annotations

import configparser
import io
import os
from pathlib import Path
from typing import Any

import click

from ..config import faas_home, read_json
from ..exceptions import ConfigError
from ..safe_open import replace_file

#: the version of the module's ``faas`` output this code reads (2: a site role per endpoint)
SCHEMA = 2
_REQUIRED = ("store", "endpoints", "max_receives", "visibility_timeout", "reply_queue_prefix")


# -- reading the outputs ---------------------------------------------------------------------

def load_outputs(path: str | os.PathLike) -> dict:
    """Read ``terraform output -json > PATH``; errors name the file."""
    path = Path(path)
    data = read_json(path, "Terraform outputs",
                     f"; write it with `terraform output -json > {path.name}`")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected the JSON object of `terraform output -json`, "
                          f"got {type(data).__name__}")
    return data


def _looks_like_site(value: Any) -> bool:
    return isinstance(value, dict) and "store" in value and "endpoints" in value


def site_outputs(outputs: dict) -> dict:
    """The module's ``faas`` object, from all outputs (``terraform output -json``: each output is
    ``{"value": ..., "type": ..., "sensitive": ...}``) or from ``terraform output -json faas``
    (the value alone). A root module that re-exports it under another name works too."""
    if _looks_like_site(outputs):
        found = outputs
    else:
        values = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in outputs.items()}
        if _looks_like_site(values.get("faas")):
            found = values["faas"]
        else:
            sites = [k for k, v in values.items() if _looks_like_site(v)]
            if len(sites) != 1:
                raise ConfigError(
                    "the Terraform outputs have " + ("no" if not sites else "more than one") +
                    " faas site output" + (f" ({', '.join(sorted(sites))})" if sites else
                                           f" (outputs: {', '.join(sorted(outputs)) or 'none'})") +
                    ": expected the `faas` output of infra/terraform/modules/site, re-exported by "
                    "the root module (`output \"faas\" { value = module.site.faas }`)")
            found = values[sites[0]]
    schema = found.get("schema")
    if schema != SCHEMA:
        raise ConfigError(f"the Terraform outputs are of schema {schema!r}; this faas reads schema "
                          f"{SCHEMA}: use the module from the same faas version")
    missing = [k for k in _REQUIRED if k not in found]
    if missing:
        raise ConfigError(f"the Terraform `faas` output lacks {', '.join(missing)}")
    if not isinstance(found["endpoints"], dict) or not found["endpoints"]:
        raise ConfigError("the Terraform `faas` output lists no endpoints")
    return found


def endpoint_outputs(outputs: dict, name: str) -> dict:
    """Endpoint ``name``'s entry in the ``faas`` output (queue URLs and ARNs, its site role)."""
    site = site_outputs(outputs)
    endpoint = site["endpoints"].get(name)
    if endpoint is None:
        raise ConfigError(f"endpoint {name!r} is not in the Terraform outputs (endpoints there: "
                          f"{', '.join(sorted(site['endpoints']))}): add it to the module's "
                          f"`endpoints` and run `terraform apply`, or pick one of those")
    return endpoint


def config_from_outputs(outputs: dict, name: str) -> dict:
    """The keys of ``$FAAS_HOME/endpoints/NAME/config.yaml`` that the Terraform outputs decide:
    ``store``, ``queue`` (the full queue URL, so region and account come with it),
    ``max_receives`` and ``visibility_timeout``. Merge them over an existing config; the engine,
    provider and launcher keys are the site admin's."""
    site = site_outputs(outputs)
    endpoint = endpoint_outputs(outputs, name)
    if not endpoint.get("queue_url"):
        raise ConfigError(f"the Terraform outputs give no queue_url for endpoint {name!r}")
    return {"store": site["store"], "queue": endpoint["queue_url"],
            "max_receives": int(site["max_receives"]),
            "visibility_timeout": int(site["visibility_timeout"])}


def profile_from_outputs(outputs: dict, name: str | None = None,
                         endpoint: str | None = None) -> tuple[str, dict]:
    """``(section, values)`` for ``$FAAS_HOME/config``: section ``[profile NAME]`` (``[default]``
    for NAME ``default``; NAME defaults to the site's name), values ``store``,
    ``reply_queue_prefix`` (the client role may create only such queues) and ``endpoint``: the
    one given, else the site's only endpoint, else the one named like the site (else none)."""
    site = site_outputs(outputs)
    name = name or site.get("site") or "default"
    endpoints = sorted(site["endpoints"])
    if endpoint is not None and endpoint not in site["endpoints"]:
        raise ConfigError(f"endpoint {endpoint!r} is not in the Terraform outputs (endpoints there: "
                          f"{', '.join(endpoints)})")
    if endpoint is None:
        if len(endpoints) == 1:
            endpoint = endpoints[0]
        elif site.get("site") in site["endpoints"]:
            endpoint = site["site"]
    values = {"store": site["store"], "reply_queue_prefix": site["reply_queue_prefix"]}
    if endpoint is not None:
        values["endpoint"] = endpoint
    return ("default" if name == "default" else f"profile {name}"), values


def write_profile(home: Path, section: str, values: dict) -> tuple[Path, bool]:
    """Set ``values`` in ``section`` of ``HOME/config`` (other keys and sections are kept; the
    file is replaced atomically, mode 600 if it holds a signing key). Returns the path and
    whether the section existed."""
    path = Path(home) / "config"
    cp = configparser.ConfigParser()
    if path.exists():
        try:
            cp.read(path)
        except configparser.Error as e:
            raise ConfigError(f"{path}: cannot parse: {e}") from None
    existed = cp.has_section(section)
    if not existed:
        cp.add_section(section)
    for k, v in values.items():
        cp.set(section, k, str(v))
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = any(cp.has_option(sec, "signing_key") for sec in cp.sections()) or \
        (path.exists() and path.stat().st_mode & 0o077 == 0)
    text = io.StringIO()
    cp.write(text)
    replace_file(path, text.getvalue(), 0o600 if secret else 0o644)
    return path, existed


def _profile_lines(arn: str, region: str | None, source_profile: str) -> str:
    """``~/.aws/config`` lines of a profile, named like the role, that assumes it."""
    lines = [f"[profile {arn.rsplit('/', 1)[-1]}]", f"role_arn = {arn}", f"source_profile = {source_profile}"]
    if region:
        lines.append(f"region = {region}")
    return "\n".join(lines)


def client_profile_lines(outputs: dict, source_profile: str = "default") -> str:
    """``~/.aws/config`` lines for a profile that assumes the module's client role ("" if the
    outputs name none)."""
    site = site_outputs(outputs)
    arn = site.get("client_role_arn")
    return _profile_lines(arn, site.get("region"), source_profile) if arn else ""


def site_role_lines(outputs: dict, name: str, source_profile: str = "default") -> str:
    """``~/.aws/config`` lines for a profile that assumes endpoint ``name``'s own site role (the
    only one that may read its queues), and its EC2 instance profile if the module made one."""
    endpoint = endpoint_outputs(outputs, name)
    arn = endpoint.get("site_role_arn")
    if not arn:
        raise ConfigError(f"the Terraform outputs give no site role for endpoint {name!r} (expected "
                          f"`site_role_arn` in its entry of the `faas` output): apply the module "
                          f"of this faas version and write the outputs again")
    text = _profile_lines(arn, site_outputs(outputs).get("region"), source_profile)
    if endpoint.get("site_instance_profile"):
        text += f"\n(on an EC2 login node: its instance profile {endpoint['site_instance_profile']})"
    return text


def endpoint_settings(path: str | os.PathLike, name: str) -> dict:
    """``config_from_outputs`` of the file at ``path``: what ``faas endpoint configure NAME
    --from-terraform PATH`` merges into config.yaml before its other options."""
    return config_from_outputs(load_outputs(path), name)


def site_role_note(path: str | os.PathLike, name: str) -> str:
    """What ``faas endpoint configure NAME --from-terraform PATH`` prints: the AWS profile of the
    endpoint's own site role, to run the endpoint as. Raises ConfigError, naming the endpoint,
    if the outputs give it no role."""
    lines = site_role_lines(load_outputs(path), name)
    profile_name = lines.split()[1].rstrip("]")
    return (f"\n\nAWS credentials: run endpoint {name} as its own site role, e.g. in ~/.aws/config:\n"
            f"{lines}\nthen: AWS_PROFILE={profile_name} faas endpoint start {name}")


# -- the commands --------------------------------------------------------------------------

#: the option for ``faas endpoint configure`` (its function gets ``from_terraform``: a Path or None)
from_terraform_option = click.option(
    "--from-terraform", "from_terraform", metavar="OUTPUTS_JSON",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="take store, queue, max_receives and visibility_timeout from `terraform output -json` "
         "of infra/terraform (other options still apply on top), and print the AWS profile of "
         "the endpoint's own site role")


@click.group()
def profile() -> None:
    """Client profiles in $FAAS_HOME/config (select one with --profile or FAAS_PROFILE)."""


@profile.command("create")
@click.argument("name")
@click.option("--from-terraform", "from_terraform", metavar="OUTPUTS_JSON", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="`terraform output -json` of infra/terraform")
@click.option("--endpoint", help="default endpoint of the profile [default: the site's only "
                                 "endpoint, or the one named like the site]")
@click.option("--signing-key", "signing_key", metavar="ID:SECRET",
              help="the endpoint's task-signing key (what `faas endpoint configure` printed); "
                   "stored in the profile, the file made mode 600 [default: none stored: "
                   "set FAAS_SIGNING_KEY instead]")
def create(name: str, from_terraform: Path, endpoint: str | None, signing_key: str | None) -> None:
    """Write (or update) profile NAME ("default": the default section) from Terraform outputs."""
    outputs = load_outputs(from_terraform)
    section, values = profile_from_outputs(outputs, name, endpoint)
    if signing_key is not None:
        from .. import signing
        signing.parse_key(signing_key, "--signing-key")
        values["signing_key"] = signing_key.strip()
    path, existed = write_profile(faas_home(), section, values)
    click.echo(f"{'updated' if existed else 'wrote'} [{section}] in {path}: "
               + ", ".join(f"{k} = {'(secret)' if k == 'signing_key' else v}" for k, v in values.items()))
    if "endpoint" not in values:
        click.echo("no default endpoint (the site has several): pass endpoint=... or --endpoint")
    hint = client_profile_lines(outputs)
    if hint:
        use = "" if name == "default" else f"FAAS_PROFILE={name} "
        click.echo("\nAWS credentials: assume the client role, e.g. in ~/.aws/config:\n"
                   f"{hint}\nthen: AWS_PROFILE={hint.split()[1].rstrip(']')} {use}python my_script.py")

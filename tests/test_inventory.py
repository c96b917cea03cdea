"""Ansible inventories (INI, YAML) as host families, and ~/.ssh/config resolution."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tune.adl.inventory import parse_inventory, parse_inventory_text
from tune.adl.model import NodeSpec
from tune.adl.sshconfig import resolve_ssh_config
from tune.errors import NodefileError, ParseError, TuneError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "inventory")

KEY = "~/.ssh/id_xen"
DOM0 = [NodeSpec("xen1", "root", 2222, 2, KEY, "10.0.0.1"),
        NodeSpec("xen2", "admin", 22, 2, KEY, "10.0.0.2"),
        NodeSpec("xen03", "admin", 22, 2, KEY, None),
        NodeSpec("xen04", "admin", 22, 2, KEY, None)]
STORAGE = [NodeSpec("nfs1", "nfs", 2200, 2, None, None)]
UNGROUPED = [NodeSpec("mgmt", "nobody", None, 1, None, "192.168.1.10")]


def ini(text: str, group=None):
    return parse_inventory_text(textwrap.dedent(text), "hosts.ini", group=group)


def yml(text: str, group=None):
    return parse_inventory_text(textwrap.dedent(text), "hosts.yml", group=group)


# --- the two sample files say the same thing -------------------------------------------------
@pytest.mark.parametrize("name", ["hosts.ini", "hosts.yml"])
@pytest.mark.parametrize("group,expected", [
    ("dom0", DOM0), ("storage", STORAGE), ("grid", DOM0 + STORAGE), ("ungrouped", UNGROUPED),
    (None, UNGROUPED + DOM0 + STORAGE), ("all", UNGROUPED + DOM0 + STORAGE)])
def test_sample_inventories(name, group, expected):
    assert parse_inventory(os.path.join(DATA, name), group=group) == expected


@pytest.mark.parametrize("name,lines", [("hosts.ini", [5, 6, 7, 7]), ("hosts.yml", [18, 22, 24, 24])])
def test_nodes_remember_where_they_were_written(name, lines):
    nodes = parse_inventory(os.path.join(DATA, name), group="dom0")
    assert [n.source.line for n in nodes] == lines
    assert all(n.source.file.endswith(name) for n in nodes)
    assert nodes[0].connect_host == "10.0.0.1" and nodes[2].connect_host == "xen03"


def test_unknown_group_names_the_known_ones():
    with pytest.raises(NodefileError, match=r"no group 'web'.*dom0, grid, storage") as e:
        parse_inventory(os.path.join(DATA, "hosts.ini"), group="web")
    assert e.value.file.endswith("hosts.ini")


def test_missing_file():
    with pytest.raises(NodefileError, match="cannot read inventory"):
        parse_inventory(os.path.join(DATA, "nope.ini"))


# --- INI details ----------------------------------------------------------------------------
def test_ini_minimal():
    assert ini("[dom0]\nxen1\n") == [NodeSpec("xen1")]
    assert ini("") == [] and ini("# only a comment\n; and another\n") == []


def test_ini_host_var_beats_child_group_beats_parent_group_beats_all():
    text = """
        [all:vars]
        ansible_user=a0
        ansible_port=1000
        tune_slots=3
        [parent:children]
        child
        [parent:vars]
        ansible_user=a1
        ansible_port=1001
        [child:vars]
        ansible_user=a2
        [child]
        h1 ansible_user=a3
        h2
        [other]
        h3
        """
    assert ini(text) == [NodeSpec("h1", "a3", 1001, 3), NodeSpec("h2", "a2", 1001, 3), NodeSpec("h3", "a0", 1000, 3)]
    assert ini(text, "parent") == [NodeSpec("h1", "a3", 1001, 3), NodeSpec("h2", "a2", 1001, 3)]


def test_ini_children_to_any_depth_and_order_of_first_appearance():
    text = """
        [top:children]
        mid
        [mid:children]
        leaf
        [leaf]
        b
        a
        [mid]
        c
        b
        """
    assert [n.host for n in ini(text, "top")] == ["b", "a", "c"]
    assert [n.host for n in ini(text, "leaf")] == ["b", "a"]


def test_ini_a_host_in_two_groups_is_one_node_with_both_groups_vars():
    text = """
        [g1]
        h ansible_user=u
        [g2]
        h ansible_host=10.1.1.1
        """
    assert ini(text) == [NodeSpec("h", "u", None, 1, None, "10.1.1.1")]


@pytest.mark.parametrize("pattern,hosts", [
    ("node[01:03]", ["node01", "node02", "node03"]),
    ("node[1:3]", ["node1", "node2", "node3"]),
    ("node[0:8:4]", ["node0", "node4", "node8"]),
    ("db-[a:c].lan", ["db-a.lan", "db-b.lan", "db-c.lan"]),
    ("r[1:2]n[1:2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
])
def test_ini_host_ranges(pattern, hosts):
    assert [n.host for n in ini(f"[g]\n{pattern} ansible_user=x\n")] == hosts
    assert all(n.user == "x" for n in ini(f"[g]\n{pattern} ansible_user=x\n"))


def test_ini_host_port_suffix_quotes_and_comments():
    nodes = ini("""
        [g]
        h1:2201
        h2 ansible_ssh_host=10.0.0.9 ansible_ssh_user=old ansible_ssh_port=2202   # legacy names
        h3 ansible_ssh_private_key_file="/keys/my key" ansible_connection=ssh foo=bar
        10.0.0.4
        ::1
        """)
    assert nodes == [NodeSpec("h1", port=2201), NodeSpec("h2", "old", 2202, address="10.0.0.9"),
                     NodeSpec("h3", key="/keys/my key"), NodeSpec("10.0.0.4"), NodeSpec("::1")]


def test_ini_vars_values_may_hold_spaces():
    assert ini("[g:vars]\nansible_ssh_private_key_file = /k/a b  # comment\n[g]\nh\n") == [NodeSpec("h", key="/k/a b")]
    assert ini("[g:vars]\nansible_ssh_private_key_file='/k/c d'\n[g]\nh\n") == [NodeSpec("h", key="/k/c d")]


@pytest.mark.parametrize("text,line,what", [
    ("[dom0\nh\n", 1, "bad section header"),
    ("[g:weird]\n", 1, "unknown section kind"),
    ("[g]\nh ansible_user\n", 2, "expected key=value"),
    ("[g]\nh 'unclosed\n", 2, "cannot split"),
    ("[g:vars]\n\nnovalue\n", 3, "expected key=value"),
    ("[g:children]\na b\n", 2, "one group name"),
    ("[g:children]\ng\n", 2, "its own child"),
    ("[g]\nnode[3:1]\n", 2, "start is after end"),
    ("[g]\nnode[a:3]\n", 2, "numbers or single letters"),
    ("[g]\nnode[1:2\n", 2, "bad host range"),
    ("[g]\nno/slash\n", 2, "bad host name"),
    ("[g]\nh ansible_port=http\n", 2, "bad port"),
    ("[g]\nh:0\n", 2, "bad port"),
    ("[g]\nh ansible_port=70000\n", 2, "bad port"),
    ("[g]\nh ansible_user='bad user'\n", 2, "bad user name"),
    ("[g]\nh ansible_host='{{ lookup(x) }}'\n", 2, "templated"),
    ("[g]\nh ansible_host=bad_host!\n", 2, "bad ansible_host"),
    ("[g]\nh tune_slots=0\n", 2, "bad slots"),
    ("[g:vars]\nansible_port=x\n[g]\nh\n", 2, "bad port"),
    ("[a:children]\nb\n[b:children]\na\n", None, "its own ancestor"),
    ("[bad group!]\n", 1, "bad section header"),
])
def test_ini_bad_lines_name_file_and_line(text, line, what):
    with pytest.raises(NodefileError, match=what) as e:
        ini(text)
    assert e.value.file == "hosts.ini"
    if line is not None:
        assert e.value.line == line
        assert str(e.value).startswith(f"hosts.ini:{line}: ")


# --- YAML details ---------------------------------------------------------------------------
def test_yaml_group_vars_inherited_and_null_hosts():
    text = """
        all:
          children:
            dom0:
              vars: {ansible_user: root}
              hosts:
                xen1: {ansible_host: 10.0.0.1}
                xen2:
        """
    assert yml(text, "dom0") == [NodeSpec("xen1", "root", address="10.0.0.1"), NodeSpec("xen2", "root")]


def test_yaml_top_level_group_other_than_all_and_group_defined_twice():
    text = """
        dom0:
          hosts:
            a:
        all:
          children:
            dom0:
              hosts:
                b: {ansible_port: 2022}
        """
    assert yml(text, "dom0") == [NodeSpec("a"), NodeSpec("b", port=2022)]


def test_format_is_guessed_from_the_text_without_extension():
    yaml_text = "all:\n  hosts:\n    h1:\n"
    ini_text = "[g]\nh1\n"
    assert parse_inventory_text(yaml_text, "inventory") == [NodeSpec("h1")]
    assert parse_inventory_text(ini_text, "inventory") == [NodeSpec("h1")]
    assert parse_inventory_text("---\nall: {hosts: {h1: }}\n", None) == [NodeSpec("h1")]


@pytest.mark.parametrize("text,line,what", [
    ("all:\n  hosts: [a, b]\n", 2, "must be a mapping"),
    ("all:\n  hostz:\n    a:\n", 2, "unexpected key 'hostz'"),
    ("all:\n  hosts:\n    a: {ansible_port: 99999}\n", 3, "bad port"),
    ("all:\n  hosts:\n    a:\n      ansible_host: [1, 2]\n", 4, "plain value"),
    ("all:\n  hosts:\n    'bad host':\n", 3, "bad host name"),
    ("all:\n  children:\n    all:\n", 3, "own child"),
    ("all: {hosts: {a: }\n", 2, "bad YAML"),
    ("- a\n- b\n", 1, "must be a mapping"),
])
def test_yaml_bad_documents_name_file_and_line(text, line, what):
    with pytest.raises(NodefileError, match=what) as e:
        yml(text)
    assert e.value.file == "hosts.yml" and e.value.line == line


def test_yaml_alias_bomb_is_bounded():
    lines = ["all:", "  vars:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += ["  hosts:", "    h1:"]
    assert yml("\n".join(lines) + "\n") == [NodeSpec("h1")]


# --- the loader uses it -----------------------------------------------------------------------
def test_family_with_inventory_attribute(tmp_path):
    from tune.adl.loader import load_family_nodes
    from tune.adl.model import Family

    (tmp_path / "hosts.ini").write_text("[dom0]\nxen1 ansible_host=10.0.0.1\n[web]\nw1\n")
    fam = Family("dom0", protocol="ssh", attributes={"inventory": "hosts.ini", "group": "dom0"})

    class App:
        base_dir = str(tmp_path)

    load_family_nodes(App(), fam)  # type: ignore[arg-type]
    assert fam.nodes == [NodeSpec("xen1", address="10.0.0.1")]


# --- robustness -------------------------------------------------------------------------------
INI_ALPHABET = st.sampled_from(list("[]:=#;'\" \n\tab01-_.{}~/") + ["ansible_host", "ansible_port", "vars",
                                                                    "children", "tune_slots", "\n[g]\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(INI_ALPHABET, max_size=60).map("".join), st.sampled_from([None, "g", "a"]))
def test_random_ini_text_raises_only_tune_errors(text, group):
    try:
        nodes = parse_inventory_text(text, "fuzz.ini", group=group)
    except TuneError:
        return
    for n in nodes:
        assert n.host and n.slots >= 1 and (n.port is None or 0 < n.port < 65536)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_unicode_ini_and_yaml_raise_only_tune_errors(text):
    for name in ("fuzz.ini", "fuzz.yml"):
        try:
            parse_inventory_text(text, name)
        except TuneError:
            pass


# --- ~/.ssh/config ---------------------------------------------------------------------------
SSH_CONFIG = """\
Host xen1
    HostName 10.0.0.1
    User root
    Port 2222
    IdentityFile ~/.ssh/id_xen
    ProxyJump bastion

Host *.grid !gw.grid
    User griduser
    ProxyJump gw.example.org:2200,jump2

Host bastion
    HostName bastion.example.org
    ProxyJump none

Host *
    IdentityFile /keys/default
"""


@pytest.fixture
def ssh_config(tmp_path):
    p = tmp_path / "config"
    p.write_text(SSH_CONFIG)
    return str(p)


def test_ssh_config_alias(ssh_config):
    c = resolve_ssh_config("xen1", ssh_config)
    assert c["hostname"] == "10.0.0.1" and c["user"] == "root" and c["port"] == 2222
    assert c["identityfile"] == [os.path.expanduser("~/.ssh/id_xen"), "/keys/default"]
    assert c["proxyjump"] == "bastion" and c["proxyjumps"] == ["bastion"]


def test_ssh_config_wildcards_and_negation(ssh_config):
    c = resolve_ssh_config("n7.grid", ssh_config)
    assert c["hostname"] == "n7.grid" and c["user"] == "griduser" and c["port"] is None
    assert c["proxyjumps"] == ["gw.example.org:2200", "jump2"]
    g = resolve_ssh_config("gw.grid", ssh_config)  # excluded by !gw.grid
    assert g["user"] is None and g["proxyjump"] is None and g["identityfile"] == ["/keys/default"]


def test_ssh_config_proxyjump_none_and_unknown_host(ssh_config):
    b = resolve_ssh_config("bastion", ssh_config)
    assert b["hostname"] == "bastion.example.org" and b["proxyjumps"] == []
    o = resolve_ssh_config("elsewhere", ssh_config)
    assert o == {"hostname": "elsewhere", "user": None, "port": None, "identityfile": ["/keys/default"],
                 "proxyjump": None, "proxyjumps": [], "proxycommand": None, "options": {}}


def test_ssh_config_missing_file_is_empty(tmp_path):
    c = resolve_ssh_config("h", str(tmp_path / "none"))
    assert c["hostname"] == "h" and c["user"] is None and c["identityfile"] == [] and c["proxyjump"] is None
    assert resolve_ssh_config("h", None)["hostname"] == "h"


def test_ssh_config_bad_port_and_bad_file(tmp_path):
    p = tmp_path / "config"
    p.write_text("Host h\n    Port twenty\n")
    with pytest.raises(ParseError, match="bad Port"):
        resolve_ssh_config("h", str(p))
    p.write_text("Host h\n    =bad\n")
    with pytest.raises(ParseError, match="SSH config"):
        resolve_ssh_config("h", str(p))


def test_validate_an_application_whose_family_reads_an_inventory(tmp_path, capsys):
    from tune.cli import main

    (tmp_path / "hosts.yml").write_text(open(os.path.join(DATA, "hosts.yml")).read())
    (tmp_path / "app.xml").write_text(
        '<application name="inv"><family name="dom0" protocol="sim">'
        '<attribute name="inventory" value="hosts.yml"/><attribute name="group" value="dom0"/></family>'
        '<component name="VM" host-family="dom0" initial="2"/></application>')
    assert main(["validate", str(tmp_path / "app.xml"), "--json"]) == 0
    assert '"dom0": 8' in capsys.readouterr().out  # 4 hosts x tune_slots 2
    (tmp_path / "app.xml").write_text(
        '<application name="inv"><family name="dom0" protocol="sim">'
        '<attribute name="inventory" value="hosts.yml"/><attribute name="group" value="web"/></family>'
        '<component name="VM" host-family="dom0" initial="2"/></application>')
    assert main(["validate", str(tmp_path / "app.xml")]) == 2
    err = capsys.readouterr().err
    assert "hosts.yml" in err and "no group 'web'" in err

"""Nodefiles: one host a line, comments, user@host:port, [ipv6]:port, repeated hosts are slots."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import mutated, node_lists
from tune.adl.model import NodeSpec, Source
from tune.adl.nodefile import format_nodefile, parse_node_line, parse_nodefile, parse_nodefile_text
from tune.errors import NodefileError, TuneError


def test_one_host_a_line_with_comments_and_blank_lines():
    text = "# the grid\nnode-a\n\n  node-b   # second\n#node-c\n"
    nodes = parse_nodefile_text(text, "n")
    assert nodes == [NodeSpec("node-a"), NodeSpec("node-b")]
    assert [n.source for n in nodes] == [Source("n", 2), Source("n", 4)]


def test_user_host_port():
    assert parse_node_line("root@dom0-a:2222") == NodeSpec("dom0-a", user="root", port=2222)
    assert parse_node_line("dom0-a:22") == NodeSpec("dom0-a", port=22)
    assert parse_node_line("alice@h") == NodeSpec("h", user="alice")
    assert parse_node_line("10.0.0.1") == NodeSpec("10.0.0.1")


def test_ipv6_in_brackets():
    assert parse_node_line("[fd00::1]:2201") == NodeSpec("fd00::1", port=2201)
    assert parse_node_line("root@[::1]") == NodeSpec("::1", user="root")
    assert format_nodefile([NodeSpec("fd00::1", port=2201)]) == "[fd00::1]:2201\n"


def test_repeated_host_is_slots_in_order_of_first_appearance():
    nodes = parse_nodefile_text("b\na\nb\nc\nb\na\n")
    assert [(n.host, n.slots) for n in nodes] == [("b", 3), ("a", 2), ("c", 1)]
    assert nodes[0].source.line == 1


def test_same_host_different_user_or_port_is_another_node():
    nodes = parse_nodefile_text("h\nu@h\nh:2222\nh\n")
    assert nodes == [NodeSpec("h", slots=2), NodeSpec("h", user="u"), NodeSpec("h", port=2222)]


def test_several_hosts_on_a_line():
    nodes = parse_nodefile_text("a b  a\tc # d\n", "f")
    assert nodes == [NodeSpec("a", slots=2), NodeSpec("b"), NodeSpec("c")]
    assert all(n.source.line == 1 for n in nodes)


def test_empty_and_comment_only():
    assert parse_nodefile_text("") == [] and parse_nodefile_text("# none\n\n   \n") == []
    assert format_nodefile([]) == ""


def test_format_writes_slots_as_repeated_lines():
    assert format_nodefile([NodeSpec("a", user="u", port=22, slots=2), NodeSpec("b")]) == "u@a:22\nu@a:22\nb\n"


def test_connect_host():
    assert NodeSpec("h").connect_host == "h" and NodeSpec("h", address="10.0.0.9").connect_host == "10.0.0.9"


@pytest.mark.parametrize("line,fragment", [
    ("h:0", "bad port"), ("h:65536", "bad port"), ("h:ssh", "bad port"), ("h:\u00b2", "bad port"),
    ("h:\u0662\u0662", "bad port"), ("a@b@c", "bad nodefile line"), ("-h", "bad host name"),
    ("h;rm", "bad host name"), ("$(x)", "bad host name"), ("\u00e9t\u00e9", "bad host name"),
    ("1bad-user@h", "bad user name"), ("[:]", "bad address"), ("[1.2.3]", "bad address"),
    ("[fd00::1", "bad"), ("h:1:2", "bad nodefile line"), ("h" * 254, "bad host name"),
])
def test_bad_lines(line, fragment):
    with pytest.raises(NodefileError) as info:
        parse_nodefile_text(f"ok\n# c\n{line}\n", "nodes")
    assert (info.value.file, info.value.line) == ("nodes", 3)
    assert fragment in info.value.message


def test_files(tmp_path):
    p = tmp_path / "nodes"
    p.write_text("a\na\n")
    assert parse_nodefile(str(p)) == [NodeSpec("a", slots=2)]
    with pytest.raises(NodefileError) as info:
        parse_nodefile(str(tmp_path / "missing"))
    assert info.value.file == str(tmp_path / "missing") and "cannot read nodefile" in info.value.message
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00h")
    with pytest.raises(NodefileError):
        parse_nodefile(str(tmp_path / "bin"))


@settings(max_examples=150, deadline=1000)
@given(node_lists())
def test_round_trip(nodes):
    assert parse_nodefile_text(format_nodefile(nodes)) == nodes


@settings(max_examples=60, deadline=1000)
@given(node_lists(), st.randoms(use_true_random=False))
def test_shuffled_duplicates_keep_first_appearance(nodes, rnd):
    words = format_nodefile(nodes).split()
    firsts = list(dict.fromkeys(words))
    rnd.shuffle(words)
    order = list(dict.fromkeys(words))
    parsed = parse_nodefile_text(" ".join(words))
    assert [format_nodefile([NodeSpec(n.host, n.user, n.port)]).strip() for n in parsed] == order
    assert sum(n.slots for n in parsed) == len(words) and sorted(order) == sorted(firsts)


@settings(max_examples=200, deadline=1000)
@given(st.data())
def test_mutations_only_raise_nodefile_errors(data):
    base = b"# grid\nroot@a:22 b\n[fd00::2]:2201\nb\nuser@c\n"
    raw = data.draw(mutated(base, xml=False))
    try:
        parse_nodefile_text(raw.decode("utf-8", "replace"), "m")
    except NodefileError as exc:
        assert exc.file == "m" and isinstance(exc.line, int)


@settings(max_examples=200, deadline=1000)
@given(st.text(max_size=40))
def test_any_text_only_raises_tune_errors(text):
    try:
        parse_nodefile_text(text)
    except TuneError:
        pass

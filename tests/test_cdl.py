"""CDL: app.xml → Application and back; every field; bad input; round trips and mutations."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import applications, mutated
from tune.adl.cdl import parse_cdl, parse_grid, to_xml
from tune.adl.model import Binding, ComponentType, DiagramRef, Family, Multiplicity, Source
from tune.errors import ParseError, TuneError

FULL = b"""<?xml version="1.0"?>
<application name="shop">
  <family name="dom0" nodefile="nodes" user="root" protocol="ssh" dirlocal="/srv/tune" python="/usr/bin/python3"
          key="id_ed25519" port="2222" allocation="spread" driver="xen" rack="r1">
    <attribute name="cores" value="8"/>
  </family>
  <family name="local"/>
  <component name="Web" wrapper="wrappers/web.wdl" legacyFile="web.tar.gz" host-family="dom0" initial="3" port="8080">
    <attribute name="password" value="s3cret" secret="true"/>
    <attribute name="motd">hello</attribute>
  </component>
  <component name="Probe" legacyFile=""/>
  <component name="Db" host-family="local" initial="0"/>
  <binding from="Probe" to="Web" from-multiplicity="1" to-multiplicity="1"/>
  <binding from="Web" to="Db" from-multiplicity="0..1" to-multiplicity="1..4"/>
  <binding from="Db" to="Db" from-multiplicity="*" to-multiplicity="2..*"/>
  <diagram event="start" file="diagrams/start.xml"/>
  <diagram event="overload" file="diagrams/overload.xml"/>
</application>
"""


def test_every_field():
    app = parse_cdl("app.xml", FULL)
    assert app.name == "shop" and app.path == "app.xml" and app.source == Source("app.xml", 2)
    assert list(app.families) == ["dom0", "local"]
    assert app.families["dom0"] == Family(name="dom0", nodefile="nodes", user="root", protocol="ssh",
                                          dirlocal="/srv/tune", python="/usr/bin/python3", key="id_ed25519",
                                          port=2222, allocation="spread", driver="xen",
                                          attributes={"rack": "r1", "cores": "8"})
    # libxml2 reports a start tag written over several lines at its last line
    assert app.families["dom0"].source == Source("app.xml", 4)
    assert app.families["local"] == Family(name="local")  # defaults: local, /tmp/tune, round-robin
    web = app.components["Web"]
    assert web == ComponentType(name="Web", wrapper="wrappers/web.wdl", legacy_file="web.tar.gz",
                                host_family="dom0", initial=3,
                                attributes={"port": "8080", "password": "s3cret", "motd": "hello"},
                                secret=frozenset({"password"}))
    assert web.source == Source("app.xml", 8)
    assert web.attribute_sources == {"port": Source("app.xml", 8), "password": Source("app.xml", 9),
                                     "motd": Source("app.xml", 10)}
    assert app.components["Probe"] == ComponentType(name="Probe")  # legacyFile="" means none; initial 1
    assert app.components["Db"].initial == 0
    assert app.bindings == [
        Binding("Probe", "Web", Multiplicity(1, 1), Multiplicity(1, 1)),
        Binding("Web", "Db", Multiplicity(0, 1), Multiplicity(1, 4)),
        Binding("Db", "Db", Multiplicity(0, None), Multiplicity(2, None))]
    assert [b.origin.line for b in app.bindings] == [14, 15, 16]
    assert app.diagrams == {"start": DiagramRef("start", "diagrams/start.xml"),
                            "overload": DiagramRef("overload", "diagrams/overload.xml")}
    assert app.diagrams["overload"].source.line == 18
    assert app.bindings_of("Db") == app.bindings[1:]
    assert app.neighbour(app.bindings[0], "Web") == "Probe"


def test_full_round_trip_through_to_xml():
    app = parse_cdl("app.xml", FULL)
    again = parse_cdl("app.xml", to_xml(app).encode())
    assert again == app
    assert again.components["Web"].secret == frozenset({"password"})


@pytest.mark.parametrize("text,lower,upper,shown", [
    ("1", 1, 1, "1"), ("0..1", 0, 1, "0..1"), ("1..4", 1, 4, "1..4"), ("*", 0, None, "*"),
    ("2..*", 2, None, "2..*"), ("0..*", 0, None, "*"), (" 3 ", 3, 3, "3"), ("1..1", 1, 1, "1")])
def test_multiplicities(text, lower, upper, shown):
    m = Multiplicity.parse(text)
    assert (m.lower, m.upper, str(m)) == (lower, upper, shown)


def test_multiplicity_contains():
    assert [Multiplicity(1, 4).contains(n) for n in (0, 1, 4, 5)] == [False, True, True, False]
    assert Multiplicity(2, None).contains(10**9) and not Multiplicity(2, None).contains(1)


@pytest.mark.parametrize("text", ["3..1", "0", "x", "", "-1", "1..", "..", "*..*", "0..0", "1..x", "1.5"])
def test_impossible_multiplicities(text):
    with pytest.raises(ParseError) as info:
        Multiplicity.parse(text, Source("a.xml", 7))
    assert (info.value.file, info.value.line) == ("a.xml", 7)


def _app(body: str) -> bytes:
    return f'<?xml version="1.0"?>\n<application name="a">\n{body}\n</application>\n'.encode()


BAD = [
    # (body placed at line 3, expected line, message fragment)
    ('<family name="f"/>\n<family name="f"/>', 4, "duplicate family 'f'"),
    ('<component name="C"/>\n<component name="C"/>', 4, "duplicate component 'C'"),
    ('<component name="C" x="1">\n<attribute name="x" value="2"/></component>', 4, "duplicate attribute 'x'"),
    ('<component name="C">\n<attribute name="x"/>\n<attribute name="x"/></component>', 5,
     "duplicate attribute 'x'"),
    ('<family name="F" a="1">\n<attribute name="a" value="2"/></family>', 4, "duplicate attribute 'a'"),
    ('<component name="C">\n<attribute name="initial" value="2"/></component>', 4, "'initial' is reserved"),
    ('<component/>', 3, "needs a 'name'"),
    ('<family name=""/>', 3, "needs a 'name'"),
    ('<binding to="B"/>', 3, "needs a 'from'"),
    ('<diagram event="start"/>', 3, "needs a 'file'"),
    ('<diagram file="x.xml"/>', 3, "needs a 'event'"),
    ('<diagram event="e" file="a"/>\n<diagram event="e" file="b"/>', 4, "two diagrams for event 'e'"),
    ('<binding from="A" to="B"/>\n<binding from="B" to="A"/>', 4, "duplicate binding B-A"),
    ('<binding from="A" to="B" to-multiplicity="3..1"/>', 3, "impossible multiplicity '3..1'"),
    ('<binding from="A" to="B" from-multiplicity="0"/>', 3, "impossible multiplicity '0'"),
    ('<binding from="A" to="B" from-multiplicity="x"/>', 3, "bad multiplicity 'x'"),
    ('<component name="C" initial="two"/>', 3, "initial='two' is not an integer"),
    ('<component name="C" initial="-1"/>', 3, "initial=-1 out of range"),
    ('<family name="F" port="http"/>', 3, "port='http' is not an integer"),
    ('<family name="F" protocol="telnet"/>', 3, "unknown protocol 'telnet'"),
    ('<family name="F" allocation="random"/>', 3, "unknown allocation 'random'"),
    ('<family name="F">\n<node name="x"/></family>', 4, "unexpected <node> in <family>"),
    ('<component name="C">\n<param/></component>', 4, "unexpected <param> in <component>"),
    ('<widget/>', 3, "unexpected <widget> in <application>"),
    ('<x:component xmlns:x="urn:x" name="C"/>', 3, "namespace 'urn:x' not expected"),
    ('<component name="C" xmlns:x="urn:x" x:initial="2"/>', 3, "namespace 'urn:x' not expected"),
    ('<component name="%s"/>' % ("C" * 65), 3, "bad component name"),
    ('<component name="&quot;; rm -rf /"/>', 3, "bad component name"),
    ('<component name="$(x)"/>', 3, "bad component name"),
    ('<component name="a&#10;b"/>', 3, "bad component name"),
    ('<component name="a&#9;b"/>', 3, "bad component name"),
    ('<component name="\u00e9t\u00e9"/>', 3, "bad component name"),
    ('<component name="C">\n<attribute name="x;y" value="1"/></component>', 4, "bad attribute name"),
    ('<family name="F">\n<attribute name="$(x)"/></family>', 4, "bad attribute name"),
    ('<diagram event="\u202e" file="x"/>', 3, "bad event name"),
]


@pytest.mark.parametrize("body,line,fragment", BAD, ids=[b[2] for b in BAD])
def test_bad_documents(body, line, fragment):
    with pytest.raises(ParseError) as info:
        parse_cdl("bad.xml", _app(body))
    assert (info.value.file, info.value.line) == ("bad.xml", line)
    assert fragment in info.value.message


@pytest.mark.parametrize("doc,line,fragment", [
    (b'<application name="a"><component name="C">', 1, "malformed XML"),
    (b'<app name="a"/>', 1, "expected <application>"),
    (b'<application xmlns="urn:tune" name="a"/>', 1, "expected <application> (no namespace)"),
    (b'\n<application/>', 2, "needs a 'name'"),
    (b'<application name="a b"/>', 1, "bad application name"),
])
def test_bad_roots(doc, line, fragment):
    with pytest.raises(ParseError) as info:
        parse_cdl("r.xml", doc)
    assert (info.value.file, info.value.line) == ("r.xml", line) and fragment in info.value.message


def test_names_are_stripped_and_64_characters_are_allowed():
    app = parse_cdl("a.xml", _app('<component name=" %s "/>' % ("C" * 64)))
    assert list(app.components) == ["C" * 64]


def test_comments_are_ignored():
    app = parse_cdl("a.xml", _app('<!-- a comment --><component name="C"><!-- x --></component>'))
    assert list(app.components) == ["C"] and app.components["C"].attributes == {}


def test_resolve_paths_against_the_application_folder(tmp_path):
    app = parse_cdl(str(tmp_path / "app.xml"), _app(""))
    assert app.resolve("w/a.wdl") == str(tmp_path / "w" / "a.wdl")
    assert app.resolve("/abs/x") == "/abs/x" and app.resolve("") is None


def test_parse_grid(tmp_path):
    grid = tmp_path / "grid.xml"
    grid.write_text('<grid>\n<family name="a" protocol="ssh" user="u" nodefile="n"/>\n'
                    '<family name="b" protocol="sim"/>\n<!-- c -->\n</grid>\n')
    fams = parse_grid(str(grid))
    assert fams == {"a": Family("a", nodefile="n", user="u", protocol="ssh"), "b": Family("b", protocol="sim")}
    assert fams["b"].source == Source(str(grid), 3)


def test_parse_grid_accepts_an_application_and_takes_its_families(example_dir):
    fams = parse_grid(os.path.join(example_dir, "app.xml"))
    assert list(fams) == list(parse_cdl(os.path.join(example_dir, "app.xml")).families)
    assert fams["dom0"].allocation == "fill" and fams["dom0"].protocol == "sim"


@pytest.mark.parametrize("text,line,fragment", [
    ('<grid>\n<component name="x"/></grid>', 2, "unexpected <component> in <grid>"),
    ('<hosts/>', 1, "expected <grid>"),
    ('<grid>\n<family name="a"/>\n<family name="a"/></grid>', 3, "duplicate family 'a'"),
    ('<grid xmlns="urn:x"/>', 1, "namespace"),
])
def test_parse_grid_bad(tmp_path, text, line, fragment):
    grid = tmp_path / "grid.xml"
    grid.write_text(text)
    with pytest.raises(ParseError) as info:
        parse_grid(str(grid))
    assert (info.value.file, info.value.line) == (str(grid), line) and fragment in info.value.message


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_round_trip_generated_applications(app):
    parsed = parse_cdl("app.xml", to_xml(app).encode())
    assert parsed == app
    assert parsed.components == app.components and parsed.families == app.families
    assert parse_cdl("app.xml", to_xml(parsed).encode()) == parsed


@settings(max_examples=150, deadline=2000)
@given(st.data())
def test_mutations_only_raise_tune_errors(data):
    doc = data.draw(mutated(FULL))
    try:
        parse_cdl("m.xml", doc)
    except TuneError as exc:
        assert exc.file == "m.xml"

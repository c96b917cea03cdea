"""Safe XML: no DTD entities, no external resources, no network; errors name file and line."""

import os

import pytest
from lxml import etree

from tune.errors import ParseError, TuneError, XMLSecurityError
from tune.xmlsafe import MAX_XML_BYTES, local_name, parse_xml, reject_namespaces

BAD = os.path.join(os.path.dirname(__file__), "data", "bad")

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<application name="x">&lol9;</application>
"""
XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE application [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<application name="x"><family name="f" user="&xxe;"/></application>
"""
XXE_HTTP = b"""<?xml version="1.0"?>
<!DOCTYPE application [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/evil">]>
<application name="x">&xxe;</application>
"""
PARAM_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE application [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<application name="x"/>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE application SYSTEM "http://127.0.0.1:9/app.dtd">
<application name="x"/>
"""
UNDECLARED = b"""<application name="x">\n&nope;</application>"""


def _passwd_lines() -> list[str]:
    try:
        with open("/etc/passwd") as fh:
            return [line.strip() for line in fh if line.strip()]
    except OSError:  # pragma: no cover
        return ["root:x:0:0"]


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE_FILE, XXE_HTTP, PARAM_ENTITY, EXTERNAL_DTD, UNDECLARED],
                         ids=["billion-laughs", "xxe-file", "xxe-http", "parameter-entity", "external-dtd",
                              "undeclared-entity"])
def test_entities_and_external_resources_are_refused(doc):
    with pytest.raises(XMLSecurityError) as info:
        parse_xml("evil.xml", data=doc)
    err = info.value
    assert err.file == "evil.xml" and isinstance(err.line, int) and err.line >= 1
    for line in _passwd_lines():
        assert line not in str(err)


def test_bad_fixtures_with_entities_are_refused_through_the_file():
    for name in ("xxe_passwd.xml", "billion_laughs.xml"):
        path = os.path.join(BAD, name)
        with pytest.raises(XMLSecurityError) as info:
            parse_xml(path)
        assert info.value.file == path and info.value.line == 1
        assert "root:x:0" not in str(info.value)


def test_a_plain_doctype_without_entities_is_accepted():
    tree = parse_xml("ok.xml", data=b"<!DOCTYPE r><r a='1'><c/></r>")
    assert tree.getroot().get("a") == "1"


def test_predefined_entities_and_character_references_are_fine():
    root = parse_xml("ok.xml", data=b'<r v="&lt;&amp;&#65;&#x42;"/>').getroot()
    assert root.get("v") == "<&AB"


def test_malformed_xml_names_file_and_line():
    with pytest.raises(ParseError) as info:
        parse_xml("m.xml", data=b"<r>\n<a>\n</r>")
    assert not isinstance(info.value, XMLSecurityError)
    assert info.value.file == "m.xml" and info.value.line == 3
    assert str(info.value).startswith("m.xml:3: malformed XML")


def test_empty_document():
    with pytest.raises(ParseError) as info:
        parse_xml("e.xml", data=b"")
    assert info.value.file == "e.xml"


def test_missing_file_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        parse_xml("/nonexistent/dir/app.xml")
    assert info.value.file == "/nonexistent/dir/app.xml" and "cannot read" in info.value.message


def test_too_large_document(monkeypatch):
    import tune.xmlsafe as xs
    monkeypatch.setattr(xs, "MAX_XML_BYTES", 10)
    with pytest.raises(ParseError, match="too large"):
        xs.parse_xml("big.xml", data=b"<r>" + b"x" * 20 + b"</r>")
    assert MAX_XML_BYTES == 16 * 1024 * 1024


def test_processing_instructions_are_dropped_comments_kept():
    root = parse_xml("p.xml", data=b"<r><?php echo 1 ?><!-- c --><a/></r>").getroot()
    assert [local_name(c) for c in root] == ["", "a"]


def test_local_name():
    root = etree.fromstring(b'<x:r xmlns:x="urn:a"><b/></x:r>')
    assert local_name(root) == "r" and local_name(root[0]) == "b"


@pytest.mark.parametrize("doc,line", [(b'<r xmlns="urn:x"/>', 1), (b'<r>\n<x:a xmlns:x="urn:x"/></r>', 2),
                                      (b'<r>\n\n<a xmlns:x="urn:x" x:b="1"/></r>', 3)])
def test_reject_namespaces(doc, line):
    tree = parse_xml("n.xml", data=doc)
    with pytest.raises(ParseError) as info:
        reject_namespaces(tree, "n.xml")
    assert (info.value.file, info.value.line) == ("n.xml", line)
    assert "namespace 'urn:x' not expected" in info.value.message


def test_deep_nesting_is_a_parse_error_not_a_crash():
    depth = 100_000
    doc = b"<a>" * depth + b"</a>" * depth
    with pytest.raises(TuneError):
        parse_xml("deep.xml", data=doc)

"""The multipart helpers the notice API, the portal and the catalog's uploads share (app/request_body.py):
a part is a file only when a file was chosen, in the order sent; a JSON field is an object or a 4xx."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from app.request_body import file_parts, is_multipart, json_field
from core.errors import ValidationError


@pytest.fixture
def flask_app():
    return Flask(__name__)


def test_file_parts_skip_empty_inputs_and_keep_order(flask_app):
    data = {"files": [(io.BytesIO(b"a"), "a.wav"), (io.BytesIO(b""), "")], "file": (io.BytesIO(b"b"), "b.wav"),
            "csv": (io.BytesIO(b"x"), "w.csv"), "other": (io.BytesIO(b"c"), "c.wav")}
    with flask_app.test_request_context("/", method="POST", data=data, content_type="multipart/form-data"):
        assert is_multipart()
        assert [(n, f.filename) for n, f in file_parts("files", "file")] == [("files", "a.wav"), ("file", "b.wav")]
        assert sorted(n for n, _ in file_parts(exclude=("csv",))) == ["file", "files", "other"]
        assert file_parts("missing") == []
    with flask_app.test_request_context("/", method="POST", data=b"raw", content_type="audio/wav"):
        assert not is_multipart() and file_parts() == []


@pytest.mark.parametrize(("value", "code"), [(None, "missing_notice"), ("{nope", "malformed_json"),
                                             ("[1, 2]", "malformed_json"), ('{"a": "x\\u0000"}', "nul_character")])
def test_json_field_refuses_what_is_not_a_json_object(flask_app, value, code):
    data = {} if value is None else {"notice": value}
    data["f"] = (io.BytesIO(b"a"), "a.wav")
    with flask_app.test_request_context("/", method="POST", data=data, content_type="multipart/form-data"):
        with pytest.raises(ValidationError) as caught:
            json_field("notice")
    assert caught.value.code == code


def test_json_field_reads_the_object(flask_app):
    with flask_app.test_request_context("/", method="POST", data={"notice": '{"a": [1]}'},
                                        content_type="multipart/form-data"):
        assert json_field("notice") == {"a": [1]}

"""The Backend contract every storage backend must keep (InmemBackend is the reference).

Test modules subclass :class:`BackendContract` and provide a ``backend`` fixture.
"""

from __future__ import annotations

from strongroom.physical.base import Backend, list_page, page_of


class BackendContract:
    """Put/get/delete/LIST semantics shared by inmem, file and Consul storage."""

    def test_satisfies_protocol(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)

    def test_put_get_overwrite_delete(self, backend: Backend) -> None:
        assert backend.get("a") is None
        backend.put("a", b"one")
        assert backend.get("a") == b"one"
        backend.put("a", b"two")
        assert backend.get("a") == b"two"
        backend.delete("a")
        assert backend.get("a") is None
        backend.delete("a")  # deleting a missing key is fine
        backend.delete("never/existed")

    def test_values_are_opaque_bytes(self, backend: Backend) -> None:
        values = [b"", b"\x00", bytes(range(256)), b"x" * 100_000]
        for index, value in enumerate(values):
            backend.put(f"v{index}", value)
        for index, value in enumerate(values):
            assert backend.get(f"v{index}") == value

    def test_list_semantics(self, backend: Backend) -> None:
        for key in ["foo", "foo/bar", "foo/baz/qux", "foo/zip", "other/deep/er/key", "z"]:
            backend.put(key, b"v")
        assert backend.list("") == ["foo", "foo/", "other/", "z"]
        assert backend.list("foo/") == ["bar", "baz/", "zip"]
        assert backend.list("foo/baz/") == ["qux"]
        assert backend.list("other/") == ["deep/"]
        assert backend.list("other/deep/er/") == ["key"]
        assert backend.list("missing/") == []
        assert backend.list("foo/bar/") == []  # a leaf is not a folder

    def test_folders_disappear_when_emptied(self, backend: Backend) -> None:
        backend.put("a/b/c", b"1")
        backend.put("a/d", b"2")
        backend.delete("a/b/c")
        assert backend.list("a/") == ["d"]
        assert backend.list("a/b/") == []
        backend.delete("a/d")
        assert backend.list("") == []

    def test_leaf_and_folder_with_same_name_coexist(self, backend: Backend) -> None:
        backend.put("x", b"leaf")
        backend.put("x/y", b"child")
        assert backend.list("") == ["x", "x/"]
        backend.delete("x")
        assert backend.list("") == ["x/"]
        assert backend.get("x/y") == b"child"

    def test_list_empty_store(self, backend: Backend) -> None:
        assert backend.list("") == []

    def test_list_page(self, backend: Backend) -> None:
        # OpenBao's ListPage: the children after `after` (which need not exist), at most
        # `limit` (<= 0: all), whatever the backend does underneath.
        keys = ["a", "a-b", "a/x", "a/y/z", "a0", "b/c", "b/d/e", "c", "é", "f/g", "f/h"]
        for key in keys:
            backend.put(key, b"v")
        assert backend.list("") == ["a", "a-b", "a/", "a0", "b/", "c", "f/", "é"]
        for prefix in ("", "a/", "b/", "missing/", "c/"):
            full = backend.list(prefix)
            assert list_page(backend, prefix) == full
            for after in ("", "a", "a/", "a/x", "a/zzz", "a-b", "b", "b/", "c", "d", "e", "é",
                          "\x00", "zzz", "x", "y/", "d/"):
                for limit in (-1, 0, 1, 2, 3, 100):
                    assert list_page(backend, prefix, after, limit) == page_of(
                        full, after, limit), (prefix, after, limit)
        assert list_page(backend, "", "a/", 2) == ["a0", "b/"]
        assert list_page(backend, "", "a/x", 2) == ["a0", "b/"]  # inside a/: past it
        assert list_page(backend, "", "é") == []

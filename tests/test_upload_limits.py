"""A namespace's uploads: one file at most NAMESPACE_FILE_LIMIT, refused by its
Content-Length before the body is read, and all of a namespace's images and objects at
most NAMESPACE_STORAGE_QUOTA together."""

from __future__ import annotations

import pytest
from django.test import Client

from namespaces.models import Image, Object
from namespaces.uploads import FORM_OVERHEAD
from tests.test_namespaces import create_namespace, logged_in, person, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def owner_client() -> Client:
    return logged_in(person("olga"))


def claimed_body(client: Client, url: str, length: int):
    """A POST whose Content-Length claims `length` bytes over a tiny body: Django's test
    input refuses (AssertionError) any read past the bytes it holds, so an answer at all
    means nothing read the body."""
    return client.generic(
        "POST", url, b"--x--\r\n", content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(length),
    )  # fmt: skip


def test_an_oversized_upload_is_refused_before_its_body_is_read(owner_client, settings, media):
    settings.NAMESPACE_FILE_LIMIT = 1000
    namespace = create_namespace(owner_client)
    for kind in ("images", "objects"):
        url = f"/namespaces/{namespace.path}/{kind}/"
        response = claimed_body(owner_client, url, 10 * 1024**3)
        assert response.status_code == 413
        assert b"NAMESPACE_FILE_LIMIT" in response.content
    real = owner_client.post(
        f"/namespaces/{namespace.path}/objects/",
        {"name": "big", "file": upload(b"x" * (1000 + FORM_OVERHEAD + 1))},
    )
    assert real.status_code == 413
    assert not Object.objects.exists() and not Image.objects.exists()
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


def test_a_file_just_over_the_limit_gets_the_forms_answer(owner_client, settings):
    settings.NAMESPACE_FILE_LIMIT = 1000
    namespace = create_namespace(owner_client)
    response = owner_client.post(
        f"/namespaces/{namespace.path}/objects/", {"name": "big", "file": upload(b"x" * 1001)}
    )
    assert response.status_code == 400 and "the limit is" in response.content.decode()


def test_a_namespaces_files_together_stay_within_its_quota(owner_client, settings):
    settings.NAMESPACE_STORAGE_QUOTA = 3000
    namespace = create_namespace(owner_client)
    base = f"/namespaces/{namespace.path}"
    first = owner_client.post(f"{base}/images/", {"name": "a", "file": upload(b"a" * 2000)})
    assert first.status_code == 302
    second = owner_client.post(f"{base}/objects/", {"name": "b", "file": upload(b"b" * 1001)})
    assert second.status_code == 400 and "NAMESPACE_STORAGE_QUOTA" in second.content.decode()
    assert not Object.objects.exists()
    fits = owner_client.post(f"{base}/objects/", {"name": "c", "file": upload(b"c" * 1000)})
    assert fits.status_code == 302 and Object.objects.get().size == 1000
    # a body the quota cannot hold is refused by its Content-Length, unread
    response = claimed_body(owner_client, f"{base}/objects/", FORM_OVERHEAD + 5000)
    assert response.status_code == 413 and b"NAMESPACE_STORAGE_QUOTA" in response.content


def test_the_quota_is_told_only_to_members(owner_client, settings):
    settings.NAMESPACE_STORAGE_QUOTA = 3000
    namespace = create_namespace(owner_client)
    stranger = logged_in(person("sam"))
    response = stranger.post(
        f"/namespaces/{namespace.path}/objects/", {"name": "b", "file": upload(b"b" * 5000)}
    )
    assert response.status_code == 404 and b"QUOTA" not in response.content


def test_a_quota_of_0_is_no_quota(owner_client, settings):
    settings.NAMESPACE_STORAGE_QUOTA = 0
    settings.NAMESPACE_FILE_LIMIT = 5000
    namespace = create_namespace(owner_client)
    for n in range(3):
        response = owner_client.post(
            f"/namespaces/{namespace.path}/objects/", {"name": f"o{n}", "file": upload(b"o" * 4000)}
        )
        assert response.status_code == 302

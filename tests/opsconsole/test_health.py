import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_livez_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/livez")
    assert response.status_code == 200


@pytest.mark.django_db
def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["timestamp"].endswith("Z")
    assert set(body["checks"]) == {"database", "redis", "broker"}
    for check in body["checks"].values():
        assert check["status"] == "healthy"
        assert check["response_time"].endswith("ms")


@pytest.mark.django_db
def test_readyz_is_503_naming_a_dead_redis(client):
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        ready = client.get("/readyz")
        health = client.get("/healthz")
    assert ready.status_code == 503
    assert "redis" in ready.content.decode()
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["redis"]["status"] == "unhealthy"
    assert "error" in body["checks"]["redis"]
    assert body["checks"]["database"]["status"] == "healthy"


@pytest.mark.django_db
def test_readyz_ok(client):
    assert client.get("/readyz").status_code == 200

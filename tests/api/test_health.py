import httpx


async def test_healthz_answers_while_alive(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_names_temporal_when_it_is_not_connected(api: httpx.AsyncClient) -> None:
    # The api fixture has no Temporal: the database is fine, Temporal is named as down.
    response = await api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert "temporal" in body["checks"]
    assert "database" not in body["checks"]

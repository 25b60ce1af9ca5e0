"""Binding tests in Python: the same scenarios as the Kotlin tests, through the generated
module, against real models and a real edgekeep-server (bindings/test.sh sets EK_*)."""

import asyncio
import hashlib
import hmac
import math
import os
import secrets
import socket
import tempfile
import time

import pytest

import edgekeep_ffi as ek

MODELS = os.environ["EK_MODELS_DIR"]


class HmacKeyProvider(ek.KeyProvider):
    """Wraps keys with an HMAC-SHA256 keystream and tag (stdlib only, test-grade)."""

    def __init__(self, kek: bytes):
        self.kek = kek

    def _stream(self, key_id, nonce, n):
        return hmac.new(self.kek, b"stream" + key_id.to_bytes(4, "little") + nonce, hashlib.sha256).digest()[:n]

    def wrap_key(self, key_id, key):
        nonce = secrets.token_bytes(16)
        body = bytes(a ^ b for a, b in zip(key, self._stream(key_id, nonce, len(key))))
        tag = hmac.new(self.kek, key_id.to_bytes(4, "little") + nonce + body, hashlib.sha256).digest()
        return nonce + body + tag

    def unwrap_key(self, key_id, wrapped):
        nonce, body, tag = wrapped[:16], wrapped[16:-32], wrapped[-32:]
        expected = hmac.new(self.kek, key_id.to_bytes(4, "little") + nonce + body, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise ek.EdgeKeepError.WrongKey()
        return bytes(a ^ b for a, b in zip(body, self._stream(key_id, nonce, len(body))))


class LockedKeyProvider(ek.KeyProvider):
    def __init__(self, unexpected):
        self.unexpected = unexpected

    def _fail(self):
        if self.unexpected:
            raise RuntimeError("keystore exploded")
        raise ek.EdgeKeepError.KeyUnavailable()

    def wrap_key(self, key_id, key):
        self._fail()

    def unwrap_key(self, key_id, wrapped):
        self._fail()


class FixedState(ek.DeviceStateProvider):
    def __init__(self, network, broken=False):
        self.network = network
        self.broken = broken

    def device_state(self):
        if self.broken:
            raise RuntimeError("battery API unavailable")
        return ek.DeviceState(battery_percent=80, charging=True, network=self.network,
                              free_storage_bytes=32 << 30, thermal=ek.ThermalState.NOMINAL)


def config(data_dir, url=None):
    pem = open(os.environ["EK_CA_PEM_FILE"]).read() if url else None
    return ek.EdgeKeepConfig(
        data_dir=data_dir,
        control_plane_url=url,
        root_certificate_pem=pem,
        publisher_keys=[os.environ["EK_PUBLISHER_KEY"]],
        model_slots=[os.environ["EK_SLOT"]],
        upload_policy=ek.UploadPolicy(),
        download_policy=ek.DownloadPolicy(),
        activation_policy=ek.ActivationPolicy.IMMEDIATE,
    )


_tokens = os.environ["EK_TOKENS"].split(",")


def token():
    return _tokens.pop()


def open_sdk(url=None, key=None, state=None, data_dir=None):
    return ek.EdgeKeep(config(data_dir or tempfile.mkdtemp(prefix="edgekeep-py"), url),
                       key or HmacKeyProvider(b"k" * 32), None, state)


def x(values, *shape):
    return ek.tensor_from_f32("X", list(shape), values)


def test_model_loads_describes_itself_and_runs():
    async def body():
        model = await open_sdk().load_model(f"{MODELS}/logreg.onnx")
        (spec,) = model.inputs()
        assert spec.name == "X" and spec.dtype == ek.DType.F32
        assert spec.shape == [ek.Dim.SYMBOLIC("batch"), ek.Dim.FIXED(16)]
        assert [o.name for o in model.outputs()] == ["label", "probabilities"]
        outputs = model.run([x([i / 32 for i in range(32)], 2, 16)])
        labels, probs = ek.tensor_to_i64(outputs[0]), ek.tensor_to_f32(outputs[1])
        assert outputs[1].shape == [2, 3]
        assert all(0 <= label <= 2 for label in labels)
        assert math.isclose(sum(probs[:3]), 1.0, abs_tol=1e-4)
        again = await asyncio.gather(*(model.run_async([x([i / 32 for i in range(32)], 2, 16)]) for _ in range(4)))
        assert all(r == outputs for r in again)
    asyncio.run(body())


def test_bad_inputs_and_files_are_typed_errors():
    async def body():
        sdk = open_sdk()
        model = await sdk.load_model(f"{MODELS}/logreg.onnx")
        with pytest.raises(ek.EdgeKeepError.InvalidInput) as e:
            model.run([x([0.0] * 8, 1, 8)])
        assert "X" in e.value.reason
        with pytest.raises(ek.EdgeKeepError.InvalidInput):
            model.run([])
        with pytest.raises(ek.EdgeKeepError.InvalidArgument):
            model.run([ek.Tensor(name="X", dtype=ek.DType.F32, shape=[1, 16], data=b"abc")])
        with pytest.raises(ek.EdgeKeepError.ModelLoad):
            await sdk.load_model(f"{MODELS}/does-not-exist.onnx")
        with pytest.raises(ek.EdgeKeepError.ModelLoad):
            await sdk.load_model_bytes(b"not a model")
    asyncio.run(body())


def test_store_through_a_python_key_provider_refuses_a_wrong_key():
    d = tempfile.mkdtemp(prefix="edgekeep-py")
    kek = bytes(range(32))
    store = open_sdk(key=HmacKeyProvider(kek), data_dir=d).store()
    store.put(b"k1", b"secret")
    store.put(b"k2", b"")
    assert store.get(b"k1") == b"secret" and store.get(b"missing") is None
    assert store.count() == 2 and store.contains(b"k2")
    assert store.delete(b"k2") and not store.delete(b"k2")
    first = store.append_event(b"a")
    store.append_event(b"b")
    assert [e.payload for e in store.events(None, 10)] == [b"a", b"b"]
    assert [e.payload for e in store.events(first, 10)] == [b"b"]
    store.rotate_data_key()
    assert store.get(b"k1") == b"secret"
    with pytest.raises(ek.EdgeKeepError.WrongKey):
        open_sdk(key=HmacKeyProvider(b"w" * 32), data_dir=d)
    assert open_sdk(key=HmacKeyProvider(kek), data_dir=d).store().count() == 1


def test_exceptions_raised_by_python_callbacks_come_back_typed():
    with pytest.raises(ek.EdgeKeepError.KeyUnavailable):
        open_sdk(key=LockedKeyProvider(False))
    with pytest.raises(ek.EdgeKeepError.KeyProviderFailed) as e:
        open_sdk(key=LockedKeyProvider(True))
    assert e.value.status == -1
    assert "exploded" not in str(e.value)


def test_personalization_learns_the_users_class():
    async def body():
        p = await open_sdk().open_personalizer(f"{MODELS}/transformer_tiny.onnx", "embedding")
        assert p.classes() == 4
        mine = p.define_class("my label")
        assert mine == 4 and p.class_name(mine) == "my label"

        def ids(seed):
            return ek.tensor_from_i64("input_ids", [1, 8], [(seed * 7 + i * 3) % 50 for i in range(8)])
        for i in range(12):
            p.add_example([ids(i)], mine if i % 2 == 0 else 0)
        assert p.examples() == 12
        adaptation = await p.retrain()
        assert adaptation.accepted == (adaptation.rejection is None)
        prediction = p.predict([ids(3)])
        assert len(prediction.probabilities) == 5
        assert math.isclose(sum(prediction.probabilities), 1.0, abs_tol=1e-3)
        with pytest.raises(ek.EdgeKeepError.Personalization):
            p.add_example([ids(1)], 99)
        p.reset()
        assert p.examples() == 0 and not p.is_personalized()
    asyncio.run(body())


def test_the_device_enrolls_syncs_and_receives_the_published_model():
    async def body():
        url, slot = os.environ["EK_URL"], os.environ["EK_SLOT"]
        sdk = open_sdk(url=url, state=FixedState(ek.NetworkType.WIFI))
        assert await sdk.sync_state() == ek.SyncState.UNENROLLED()
        with pytest.raises(ek.EdgeKeepError.NotEnrolled):
            await sdk.sync_now()
        device_id = await sdk.enroll(os.environ["EK_ORG"], token())
        assert await sdk.sync_state() == ek.SyncState.ENROLLED(device_id)
        report = await sdk.sync_now()
        assert report.sent >= 1 and report.deferred is None
        delivery = await sdk.update_models()
        assert delivery.changes == [ek.SlotUpdate(slot=slot, change=ek.SlotChange.ACTIVATED(1))]
        active = sdk.active_model(slot)
        assert active.version == 1
        assert len(active.model.run([x([0.0] * 16, 1, 16)])) == 2
    asyncio.run(body())


def test_control_plane_and_policy_refusals_are_typed():
    async def body():
        url, org = os.environ["EK_URL"], os.environ["EK_ORG"]
        sdk = open_sdk(url=url, state=FixedState(ek.NetworkType.CELLULAR))
        with pytest.raises(ek.EdgeKeepError.Server) as e:
            await sdk.enroll(org, "ekb_not_a_real_token")
        assert 400 <= e.value.status < 500 and not e.value.transient
        await sdk.enroll(org, token())
        assert (await sdk.sync_now()).deferred == "cellular"
        broken = open_sdk(url=url, state=FixedState(ek.NetworkType.WIFI, broken=True))
        await broken.enroll(org, token())
        assert (await broken.sync_now()).deferred == "offline"
        with pytest.raises(ek.EdgeKeepError.SyncNotConfigured):
            await open_sdk().sync_now()
        with pytest.raises(ek.EdgeKeepError.InvalidArgument):
            open_sdk(url="http://127.0.0.1:1")
    asyncio.run(body())


def test_cancelling_a_network_call_closes_its_connection():
    hole = socket.create_server(("127.0.0.1", 0))
    hole.settimeout(10)
    url = f"https://127.0.0.1:{hole.getsockname()[1]}"

    async def body():
        sdk = open_sdk(url=url)
        call = asyncio.ensure_future(sdk.enroll("org", "ekb_token"))
        loop = asyncio.get_running_loop()
        conn, _ = await loop.run_in_executor(None, hole.accept)
        conn.settimeout(5)
        assert await loop.run_in_executor(None, conn.recv, 512)  # the TLS ClientHello
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        started = time.monotonic()
        while await loop.run_in_executor(None, conn.recv, 512):
            pass  # anything until end of stream; a timeout fails the test
        assert time.monotonic() - started < 5
        conn.close()
    try:
        asyncio.run(body())
    finally:
        hole.close()


def test_the_log_sink_receives_sdk_lines():
    lines = []

    class Sink(ek.LogSink):
        def log(self, level, target, message):
            lines.append((level, target, message))

    ek.set_log_sink(Sink(), ek.LogLevel.INFO)
    open_sdk()
    ek.clear_log_sink()
    assert any(level == ek.LogLevel.INFO and target == "edgekeep" and "opened" in message
               for level, target, message in lines)

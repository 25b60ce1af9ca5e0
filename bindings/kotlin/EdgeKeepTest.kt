// Binding tests on the JVM: the glue between Kotlin and the SDK (types, errors, async,
// cancellation, callbacks) against real models and a real edgekeep-server.
// Run by bindings/test.sh, which passes the control plane through EK_* variables.
package dev.edgekeep.test

import dev.edgekeep.*
import java.io.File
import java.math.BigInteger
import java.net.ServerSocket
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec
import kotlinx.coroutines.*

fun env(name: String): String = System.getenv(name) ?: error("$name is not set (run bindings/test.sh)")

val models = env("EK_MODELS_DIR")

/** A key provider holding its key-encryption key in memory, as a Keystore-backed one would. */
class AesKeyProvider(private val kek: ByteArray) : KeyProvider {
    override fun wrapKey(keyId: UInt, key: ByteArray): ByteArray {
        val nonce = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, SecretKeySpec(kek, "AES"), GCMParameterSpec(128, nonce))
        cipher.updateAAD(keyId.toString().toByteArray())
        return nonce + cipher.doFinal(key)
    }

    override fun unwrapKey(keyId: UInt, wrapped: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, SecretKeySpec(kek, "AES"), GCMParameterSpec(128, wrapped, 0, 12))
        cipher.updateAAD(keyId.toString().toByteArray())
        try {
            return cipher.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: AEADBadTagException) {
            throw EdgeKeepException.WrongKey()
        }
    }
}

/** A provider whose key cannot be reached, the way a locked device answers. */
class LockedKeyProvider(private val unexpected: Boolean) : KeyProvider {
    override fun wrapKey(keyId: UInt, key: ByteArray): ByteArray = fail()
    override fun unwrapKey(keyId: UInt, wrapped: ByteArray): ByteArray = fail()
    private fun fail(): Nothing =
        if (unexpected) throw IllegalStateException("keystore exploded") else throw EdgeKeepException.KeyUnavailable()
}

/** The device identity key as StrongBox would hold it: ECDSA P-256, raw r||s signatures. */
class JavaDeviceKey : DeviceKeyProvider {
    @Volatile private var pair = generate()
    @Volatile var locked = false

    private fun generate() =
        KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()

    private fun fixed(n: BigInteger): ByteArray {
        val b = n.toByteArray()
        return if (b.size >= 32) b.copyOfRange(b.size - 32, b.size) else ByteArray(32 - b.size) + b
    }

    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        return byteArrayOf(4) + fixed(w.affineX) + fixed(w.affineY)
    }

    override fun sign(message: ByteArray): ByteArray {
        if (locked) throw IllegalStateException("the secure element is locked")
        return Signature.getInstance("SHA256withECDSAinP1363Format").run {
            initSign(pair.private)
            update(message)
            sign()
        }
    }

    override fun reset() {
        pair = generate()
    }
}

class FixedState(private val network: NetworkType, private val broken: Boolean = false) : DeviceStateProvider {
    override fun deviceState(): DeviceState {
        if (broken) throw RuntimeException("battery API unavailable")
        return DeviceState(batteryPercent = 80u, charging = true, network = network,
            freeStorageBytes = 32uL shl 30, thermal = ThermalState.NOMINAL)
    }
}

fun tempDir(): String = Files.createTempDirectory("edgekeep-kt").toString()

fun config(dataDir: String, url: String? = null) = EdgeKeepConfig(
    dataDir = dataDir,
    controlPlaneUrl = url,
    rootCertificatePem = url?.let { File(env("EK_CA_PEM_FILE")).readText() },
    publisherKeys = listOf(env("EK_PUBLISHER_KEY")),
    modelSlots = listOf(env("EK_SLOT")),
    uploadPolicy = UploadPolicy(),
    downloadPolicy = DownloadPolicy(),
    activationPolicy = ActivationPolicy.IMMEDIATE,
)

val tokens = ArrayDeque(env("EK_TOKENS").split(","))
fun token(): String = tokens.removeFirst()

fun f32(values: FloatArray, vararg shape: Long) =
    tensorFromF32("X", shape.map { it.toULong() }, values.toList())

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

inline fun <reified E : Throwable> expectThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

// ---- the README's Kotlin snippet is this function, verbatim between the markers ----
// README-SNIPPET-START
suspend fun readmeExample(dataDir: String, keyProvider: KeyProvider, modelPath: String): List<Float> {
    val edgekeep = EdgeKeep(
        EdgeKeepConfig(
            dataDir = dataDir,
            uploadPolicy = UploadPolicy(),
            downloadPolicy = DownloadPolicy(),
            activationPolicy = ActivationPolicy.IMMEDIATE,
        ),
        keyProvider,
        deviceKeyProvider = null,
        deviceStateProvider = null,
    )
    edgekeep.store().put("greeting".toByteArray(), "hello".toByteArray())

    val model = edgekeep.loadModel(modelPath)              // suspends; loads off the caller's thread
    val input = tensorFromF32("X", listOf(1uL, 16uL), List(16) { 0.5f })
    val outputs = try {
        model.runAsync(listOf(input))
    } catch (e: EdgeKeepException.InvalidInput) {
        error("wrong input: ${e.message}")                  // log-safe: names and shapes only
    }
    return tensorToF32(outputs.first { it.name == "probabilities" })
}
// README-SNIPPET-END

val tests = linkedMapOf<String, suspend () -> Unit>(
    "readme snippet runs" to {
        val p = readmeExample(tempDir(), AesKeyProvider(ByteArray(32) { 1 }), "$models/logreg.onnx")
        check(p.size == 3 && Math.abs(p.sum() - 1f) < 1e-4) { "probabilities $p" }
    },
    "a model loads, describes itself and runs" to {
        val ek = EdgeKeep(config(tempDir()), AesKeyProvider(ByteArray(32)), null, null)
        val model = ek.loadModel("$models/logreg.onnx")
        val input = model.inputs().single()
        check(input.name == "X" && input.dtype == DType.F32) { "input $input" }
        check(input.shape == listOf(Dim.Symbolic("batch"), Dim.Fixed(16uL))) { "shape ${input.shape}" }
        check(model.outputs().map { it.name } == listOf("label", "probabilities")) { "outputs" }
        val outputs = model.run(listOf(f32(FloatArray(32) { it / 32f }, 2, 16)))
        val labels = tensorToI64(outputs[0])
        val probs = tensorToF32(outputs[1])
        check(outputs[1].shape == listOf(2uL, 3uL)) { "shape ${outputs[1].shape}" }
        check(labels.size == 2 && labels.all { it in 0L..2L }) { "labels $labels" }
        check(Math.abs(probs.take(3).sum() - 1f) < 1e-4) { "probabilities $probs" }
        // The same bytes through the async path, several at once on the SDK's workers.
        val again = coroutineScope {
            (1..4).map { async { model.runAsync(listOf(f32(FloatArray(32) { it / 32f }, 2, 16))) } }.awaitAll()
        }
        // (Tensor.data is a ByteArray: compare contents, not references.)
        fun contents(ts: List<Tensor>) = ts.map { Triple(it.name, it.shape, it.data.toList()) }
        check(again.all { contents(it) == contents(outputs) }) { "async results differ" }
    },
    "bad inputs and files are typed errors" to {
        val ek = EdgeKeep(config(tempDir()), AesKeyProvider(ByteArray(32)), null, null)
        val model = ek.loadModel("$models/logreg.onnx")
        val wrongShape = expectThrows<EdgeKeepException.InvalidInput> { model.run(listOf(f32(FloatArray(8), 1, 8))) }
        check(wrongShape.reason.contains("X")) { "reason ${wrongShape.reason}" }
        expectThrows<EdgeKeepException.InvalidInput> { model.run(emptyList()) }
        expectThrows<EdgeKeepException.InvalidArgument> {
            model.run(listOf(Tensor("X", DType.F32, listOf(1uL, 16uL), ByteArray(3))))
        }
        expectThrows<EdgeKeepException.InvalidArgument> { tensorToI64(f32(FloatArray(16), 1, 16)) }
        expectThrows<EdgeKeepException.ModelLoad> { ek.loadModel("$models/does-not-exist.onnx") }
        expectThrows<EdgeKeepException.ModelLoad> { ek.loadModelBytes("not a model".toByteArray()) }
    },
    "the store works through a Kotlin key provider and refuses a wrong key" to {
        val dir = tempDir()
        val kek = ByteArray(32) { it.toByte() }
        EdgeKeep(config(dir), AesKeyProvider(kek), null, null).store().run {
            put("k1".toByteArray(), "secret".toByteArray())
            put("k2".toByteArray(), ByteArray(0))
            check(get("k1".toByteArray())!!.decodeToString() == "secret") { "get" }
            check(count() == 2uL && contains("k2".toByteArray())) { "count" }
            check(delete("k2".toByteArray()) && !delete("k2".toByteArray())) { "delete" }
            check(get("missing".toByteArray()) == null) { "missing" }
            val first = appendEvent("a".toByteArray())
            appendEvent("b".toByteArray())
            check(events(null, 10u).map { it.payload.decodeToString() } == listOf("a", "b")) { "events" }
            check(events(first, 10u).map { it.payload.decodeToString() } == listOf("b")) { "events after" }
            rotateDataKey()
            check(get("k1".toByteArray())!!.decodeToString() == "secret") { "after rotation" }
        }
        // Reopened with the same key: the data is there.
        check(EdgeKeep(config(dir), AesKeyProvider(kek), null, null).store().count() == 1uL) { "reopen" }
        // The wrong key is an error, and loses nothing.
        expectThrows<EdgeKeepException.WrongKey> { EdgeKeep(config(dir), AesKeyProvider(ByteArray(32) { 9 }), null, null) }
        check(EdgeKeep(config(dir), AesKeyProvider(kek), null, null).store().count() == 1uL) { "after wrong key" }
    },
    "exceptions thrown by Kotlin callbacks come back typed" to {
        val dir = tempDir()
        expectThrows<EdgeKeepException.KeyUnavailable> { EdgeKeep(config(dir), LockedKeyProvider(false), null, null) }
        val e = expectThrows<EdgeKeepException.KeyProviderFailed> { EdgeKeep(config(dir), LockedKeyProvider(true), null, null) }
        check(e.status == -1L) { "status ${e.status}" }
        check(!e.message!!.contains("exploded")) { "the callback's text leaked: ${e.message}" }
    },
    "personalization learns the user's class" to {
        val ek = EdgeKeep(config(tempDir()), AesKeyProvider(ByteArray(32)), null, null)
        val p = ek.openPersonalizer("$models/transformer_tiny.onnx", "embedding")
        check(p.classes() == 4u) { "base classes ${p.classes()}" }
        val mine = p.defineClass("my label")
        check(mine == 4u && p.className(mine) == "my label") { "class $mine" }
        fun ids(seed: Int) = tensorFromI64("input_ids", listOf(1uL, 8uL), List(8) { ((seed * 7 + it * 3) % 50).toLong() })
        for (i in 0 until 12) p.addExample(listOf(ids(i)), if (i % 2 == 0) mine else 0u)
        check(p.examples() == 12uL) { "examples ${p.examples()}" }
        val adaptation = p.retrain()
        check(adaptation.accepted == (adaptation.rejection == null)) { "adaptation $adaptation" }
        val prediction = p.predict(listOf(ids(3)))
        check(prediction.probabilities.size == 5 && Math.abs(prediction.probabilities.sum() - 1f) < 1e-3) { "prediction $prediction" }
        expectThrows<EdgeKeepException.Personalization> { p.addExample(listOf(ids(1)), 99u) }
        expectThrows<EdgeKeepException.InvalidInput> { p.predict(listOf(f32(FloatArray(16), 1, 16))) }
        p.reset()
        check(p.examples() == 0uL && !p.isPersonalized()) { "reset" }
    },
    "the device enrolls, syncs and receives the published model" to {
        val url = env("EK_URL")
        val deviceKey = JavaDeviceKey()
        val ek = EdgeKeep(config(tempDir(), url), AesKeyProvider(ByteArray(32) { 3 }), deviceKey, FixedState(NetworkType.WIFI))
        check(ek.syncState() == SyncState.Unenrolled) { "state" }
        expectThrows<EdgeKeepException.NotEnrolled> { ek.syncNow() }
        val deviceId = ek.enroll(env("EK_ORG"), token())
        check(ek.syncState() == SyncState.Enrolled(deviceId)) { "enrolled" }
        val report = ek.syncNow()
        check(report.sent >= 1uL && report.deferred == null) { "upload $report" }
        val delivery = ek.updateModels()
        check(delivery.changes == listOf(SlotUpdate(env("EK_SLOT"), SlotChange.Activated(1uL)))) { "delivery $delivery" }
        val active = ek.activeModel(env("EK_SLOT")) ?: error("no active model")
        check(active.version == 1uL) { "version" }
        val out = active.model.run(listOf(f32(FloatArray(16), 1, 16)))
        check(out.size == 2) { "delivered model outputs" }
        // The locked secure element: a typed error, not a crash.
        deviceKey.locked = true
        val other = EdgeKeep(config(tempDir(), url), AesKeyProvider(ByteArray(32)), deviceKey, null)
        expectThrows<EdgeKeepException.DeviceKeyFailed> { other.enroll(env("EK_ORG"), "ekb_unused") }
    },
    "control-plane and policy refusals are typed" to {
        val url = env("EK_URL")
        val ek = EdgeKeep(config(tempDir(), url), AesKeyProvider(ByteArray(32)), null, FixedState(NetworkType.CELLULAR))
        val e = expectThrows<EdgeKeepException.Server> { ek.enroll(env("EK_ORG"), "ekb_not_a_real_token") }
        check(e.status.toInt() in 400..499 && !e.transient) { "server error $e" }
        ek.enroll(env("EK_ORG"), token())
        check(ek.syncNow().deferred == "cellular") { "cellular upload should be deferred" }
        val broken = EdgeKeep(config(tempDir(), url), AesKeyProvider(ByteArray(32)), null, FixedState(NetworkType.WIFI, broken = true))
        broken.enroll(env("EK_ORG"), token())
        check(broken.syncNow().deferred == "offline") { "a failing state provider means offline" }
        expectThrows<EdgeKeepException.SyncNotConfigured> { EdgeKeep(config(tempDir()), AesKeyProvider(ByteArray(32)), null, null).syncNow() }
        expectThrows<EdgeKeepException.InvalidArgument> {
            EdgeKeep(config(tempDir(), "http://127.0.0.1:1"), AesKeyProvider(ByteArray(32)), null, null)
        }
    },
    "cancelling a network call closes its connection" to {
        ServerSocket(0, 8, java.net.InetAddress.getLoopbackAddress()).use { hole ->
            val url = "https://127.0.0.1:${hole.localPort}"
            val ek = EdgeKeep(config(tempDir(), url), AesKeyProvider(ByteArray(32)), null, null)
            val call = GlobalScope.async(Dispatchers.IO) { ek.enroll("org", "ekb_token") }
            val conn = withContext(Dispatchers.IO) { hole.soTimeout = 10_000; hole.accept() }
            conn.use {
                it.soTimeout = 5_000
                val hello = it.getInputStream().read(ByteArray(512))  // the TLS ClientHello
                check(hello > 0) { "no ClientHello" }
                call.cancel()
                expectThrows<CancellationException> { call.await() }
                val started = System.nanoTime()
                // The SDK dropped the request: the socket reaches end of stream.
                val eof = withContext(Dispatchers.IO) {
                    var n = 0
                    while (n >= 0) n = it.getInputStream().read(ByteArray(512))
                    n
                }
                val ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)
                check(eof == -1 && ms < 5_000) { "connection still open after cancel ($ms ms)" }
            }
        }
    },
    "the log sink receives SDK lines" to {
        val lines = CopyOnWriteArrayList<String>()
        setLogSink(object : LogSink {
            override fun log(level: LogLevel, target: String, message: String) {
                lines.add("$level $target $message")
            }
        }, LogLevel.INFO)
        EdgeKeep(config(tempDir()), AesKeyProvider(ByteArray(32)), null, null)
        clearLogSink()
        check(lines.any { it.startsWith("INFO edgekeep") && it.contains("opened") }) { "lines $lines" }
    },
)

fun main() {
    var passed = 0
    var failed = 0
    for ((name, body) in tests) {
        try {
            runBlocking { withTimeout(120_000) { body() } }
            println("ok    $name")
            passed++
        } catch (e: Throwable) {
            println("FAIL  $name: $e")
            e.printStackTrace(System.out)
            failed++
        }
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) System.exit(1)
}

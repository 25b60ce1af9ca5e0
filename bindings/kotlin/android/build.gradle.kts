// The edgekeep Android library module: the generated Kotlin API plus libedgekeep_ffi.so for
// each ABI, built with cargo-ndk. Include it in an app's Gradle project (see bindings/README.md).
// Needs: rustup, `cargo install cargo-ndk`, the Android NDK (ANDROID_NDK_HOME), and a host
// build of the library for generating the bindings.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val repoRoot: File = projectDir.resolve("../../..").canonicalFile
val generatedKotlin: File = layout.buildDirectory.dir("generated/uniffi").get().asFile
val jniLibs: File = layout.buildDirectory.dir("rust/jniLibs").get().asFile
val rustProfile: String = (findProperty("edgekeep.rustProfile") as String?) ?: "release-small"
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "dev.edgekeep"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }
    sourceSets["main"].java.srcDir(generatedKotlin)
    sourceSets["main"].jniLibs.srcDir(jniLibs)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

dependencies {
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
}

// libedgekeep_ffi.so for each ABI, size-optimized.
val cargoNdk by tasks.registering(Exec::class) {
    workingDir = repoRoot
    commandLine(
        listOf("cargo", "ndk") + abis.flatMap { listOf("-t", it) } +
            listOf("-o", jniLibs.path, "build", "--locked", "-p", "edgekeep-ffi", "--profile", rustProfile)
    )
}

// The Kotlin API, generated from a host build of the same library.
val generateBindings by tasks.registering(Exec::class) {
    workingDir = repoRoot
    commandLine("bash", "-c",
        "cargo build --locked -p edgekeep-ffi -p uniffi-bindgen && " +
            "bindings/generate.sh \"\" ${layout.buildDirectory.dir("uniffi-all").get().asFile} && " +
            "rm -rf ${generatedKotlin} && cp -r ${layout.buildDirectory.dir("uniffi-all").get().asFile}/kotlin ${generatedKotlin}")
}

tasks.named("preBuild") { dependsOn(cargoNdk, generateBindings) }

#pragma once

/// EMBER_API marks the symbols the ember library exports. The library is built
/// with hidden visibility, so anything without it stays private to the library.
/// A static build defines EMBER_STATIC for itself and for everything that links it.
#if defined(EMBER_STATIC)
#define EMBER_API
#elif defined(_WIN32)
#if defined(EMBER_BUILDING)
#define EMBER_API __declspec(dllexport)
#else
#define EMBER_API __declspec(dllimport)
#endif
#else
#define EMBER_API [[gnu::visibility("default")]]
#endif

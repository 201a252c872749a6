#pragma once

// The test programs under tests/alloc/ replace operator new (counting_new.cpp): every
// allocation is counted, and one can be made to fail.

#include <cstddef>
#include <cstdint>

namespace ember_test {

/// Allocations made through operator new since the program started.
std::size_t allocations() noexcept;

/// Makes the allocation `n` allocations from now (0: the next one) throw std::bad_alloc,
/// once. SIZE_MAX: none.
void fail_allocation_in(std::size_t n) noexcept;

/// Whether the failure asked for has happened.
bool allocation_failed() noexcept;

}  // namespace ember_test

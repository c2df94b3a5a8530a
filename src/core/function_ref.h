// A non-owning reference to a callable, what C++26 names std::function_ref: for callbacks that
// run before the call taking them returns (a thread pool's loop body). Unlike std::function it
// never allocates, whatever the callable captures; the callable must outlive the reference.
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace kvc {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
  // Any callable with this signature, except a FunctionRef (which is copied instead).
  template <typename F>
  static constexpr bool kAccepts = !std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
                                   std::is_invocable_r_v<R, std::remove_reference_t<F>&, Args...>;

 public:
  // Implicit, as std::function's: call sites pass lambdas.
  template <typename F, typename = std::enable_if_t<kAccepts<F>>>
  FunctionRef(F&& f) noexcept
      : callable_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* callable, Args... args) -> R {
          return std::invoke(*static_cast<std::remove_reference_t<F>*>(callable),
                             std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(callable_, std::forward<Args>(args)...); }

 private:
  void* callable_;
  R (*call_)(void*, Args...);
};

}  // namespace kvc

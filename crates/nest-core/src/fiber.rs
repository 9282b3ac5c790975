//! Stackful coroutines that let synchronous script code wait on async I/O.
//!
//! A Rhai script calls `client.get(...)` and expects the response back as a plain value. Rather than block an OS
//! thread, the call runs on a *fiber* (a `corosensei` coroutine with its own stack): the host function hands a
//! future to [`suspend`], the fiber switches back to the worker's async code, the future is awaited there with every
//! other VU's I/O, and the fiber is resumed with the result. See `shared/design/execution-model.md` for the
//! measurements behind this choice.
//!
//! Fibers are pooled per worker and held only while a script call runs: think time is spent in the async VU loop,
//! outside any fiber, so the number of stacks follows the calls in flight rather than the number of VUs. Stacks are
//! reused across calls, never moved across threads, and never dropped while suspended: a stop resumes every suspended
//! fiber with [`Cancelled`] so that the script unwinds through its own error path.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use tokio_util::sync::CancellationToken;

/// Bytes at the low end of a stack treated as unusable: the guard page, at the largest common page size.
const GUARD_BYTES: usize = 64 << 10;

/// The future a fiber waits on, where it lies: in [`suspend`]'s frame on the waiting fiber's stack, with the slot its
/// output goes to (see [`Deliver`]). Neither moved nor boxed: the driver polls it and drops it there ([`InPlace`]).
type Suspended = NonNull<dyn Future<Output = ()>>;

enum Resume {
    Start,
    /// The future completed and its output is in the fiber's slot.
    Done,
    Cancelled,
}

/// A future that, once complete, puts its output into the slot of the fiber that suspended on it.
///
/// The slot and this future live in [`suspend`]'s frame on the fiber's stack, which stays where it is while the
/// fiber waits. The driver polls this future only while the fiber is suspended in that very call, and drops it
/// before resuming the fiber (done or cancelled) or dropping it, so the slot is alive whenever it is written.
struct Deliver<F: Future> {
    future: F,
    slot: *mut Option<F::Output>,
}

impl<F: Future> Future for Deliver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`, and `Deliver` has no `Drop`.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let output = std::task::ready!(future.poll(cx));
        // SAFETY: see the type's documentation: the fiber waits on this future, so its slot is alive.
        unsafe { *this.slot = Some(output) };
        std::task::Poll::Ready(())
    }
}

/// What the running fiber needs to find itself again after another fiber ran in between.
#[derive(Clone, Copy)]
struct Current {
    yielder: *const Yielder<Resume, Suspended>,
    stack_limit: usize,
}

thread_local! {
    /// The fiber running on this thread right now, if any. Set by the fiber itself whenever it gains control and
    /// cleared by the driver whenever control comes back, so it never points at a fiber that is not running.
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
    /// A value the running fiber keeps for itself (the binding's per-VU context); saved and restored across
    /// every suspension, so each fiber sees its own.
    static LOCAL: RefCell<Option<Rc<dyn Any>>> = const { RefCell::new(None) };
}

/// A suspended fiber was resumed because the run is being stopped, or the caller is not on a fiber at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Cancelled {
    /// The run stopped while this fiber waited; the script should unwind.
    #[error("the run was stopped")]
    Stopped,
    /// [`suspend`] was called outside of a fiber (for example at a script's top level while it loads).
    #[error("this call can only be made while a task runs")]
    NotInFiber,
}

/// Why a fiber could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum FiberError {
    /// No stack could be mapped: usually `vm.max_map_count` or memory.
    #[error("could not allocate a fiber stack ({0}); raise vm.max_map_count or lower the number of users")]
    Stack(#[source] io::Error),
    /// Code on the fiber panicked. The panic was caught; the worker goes on.
    #[error("panic in script call: {0}")]
    Panicked(String),
}

/// Suspends the running fiber until `future` completes, and returns its output.
///
/// The worker runs other VUs meanwhile. Returns [`Cancelled::Stopped`] when the run is stopped before the future
/// completes (the future is dropped), and [`Cancelled::NotInFiber`] when called outside a fiber.
///
/// Never hold a `RefCell` borrow or a lock across this call: other fibers run before it returns.
pub fn suspend<T: 'static>(future: impl Future<Output = T> + 'static) -> Result<T, Cancelled> {
    suspend_with(move || future)
}

/// [`suspend`] on the future that `make` builds, which is built where it is polled from (a large future passed by
/// value is copied there instead, every time), and only on a fiber.
pub fn suspend_with<F: Future + 'static>(make: impl FnOnce() -> F) -> Result<F::Output, Cancelled> {
    let current = CURRENT.get().ok_or(Cancelled::NotInFiber)?;
    let local = LOCAL.take();
    let mut slot: Option<F::Output> = None;
    // The driver drops it in place (`InPlace`) before this fiber goes on: never here.
    let mut deliver = ManuallyDrop::new(Deliver { future: make(), slot: &raw mut slot });
    let pending: Suspended = NonNull::from(&mut *deliver as &mut dyn Future<Output = ()>);
    // SAFETY: `current.yielder` was set by this very fiber when it last gained control, and a fiber's yielder lives
    // on its own stack for as long as the fiber runs; we are running on that fiber now.
    let resumed = unsafe { &*current.yielder }.suspend(pending);
    CURRENT.set(Some(current));
    LOCAL.replace(local);
    match resumed {
        Resume::Done => Ok(slot.take().expect("a fiber is resumed once the future it suspended on has completed")),
        Resume::Cancelled => Err(Cancelled::Stopped),
        Resume::Start => unreachable!("a fiber is started only once"),
    }
}

/// Lets the worker run other VUs before this fiber goes on: the fairness yield for CPU-bound scripts.
pub fn yield_now() -> Result<(), Cancelled> {
    suspend(tokio::task::yield_now())
}

/// Whether the calling code runs on a fiber.
#[inline]
pub fn in_fiber() -> bool {
    CURRENT.get().is_some()
}

/// Bytes of stack left below the calling point on the running fiber, or `None` outside a fiber.
///
/// A runaway recursion checks this to stop cleanly instead of hitting the guard page, which would kill the process.
#[inline]
pub fn stack_remaining() -> Option<usize> {
    let current = CURRENT.get()?;
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    Some(here.saturating_sub(current.stack_limit))
}

/// Stores a value for the running fiber; [`local`] reads it back, even after suspensions.
pub fn set_local(value: Option<Rc<dyn Any>>) {
    LOCAL.replace(value);
}

/// The value the running fiber stored with [`set_local`], if it has the type asked for.
#[inline]
pub fn local<T: 'static>() -> Option<Rc<T>> {
    LOCAL.with_borrow(|value| value.clone()?.downcast::<T>().ok())
}

/// Whether the running fiber stored a value of type `T` with [`set_local`]: [`local`] without taking a reference.
#[inline]
pub fn has_local<T: 'static>() -> bool {
    LOCAL.with_borrow(|value| value.as_deref().is_some_and(|value| value.is::<T>()))
}

/// The fiber stacks of one worker, reused from call to call.
pub struct FiberPool {
    stacks: RefCell<Vec<DefaultStack>>,
    stack_size: usize,
    max_idle: usize,
    created: Cell<usize>,
}

impl FiberPool {
    /// A pool whose stacks reserve `stack_size` bytes each (only touched pages use memory), keeping at most
    /// `max_idle` idle stacks for reuse.
    pub fn new(stack_size: usize, max_idle: usize) -> FiberPool {
        FiberPool { stacks: RefCell::new(Vec::new()), stack_size, max_idle, created: Cell::new(0) }
    }

    /// The stack size that fits a Rhai call depth of 64 in this build, with room for the overflow guard.
    pub fn default_stack_size() -> usize {
        if cfg!(debug_assertions) { 8 << 20 } else { 1 << 20 }
    }

    /// How many stacks this pool has mapped so far: the peak number of calls in flight.
    pub fn stacks_created(&self) -> usize {
        self.created.get()
    }

    /// Runs `f` on a fiber and returns its result. While `f` waits in [`suspend`], the caller's task is pending and
    /// the worker runs other tasks. When `kill` fires, the waiting future is dropped and `f` sees [`Cancelled`].
    pub async fn run<R: 'static>(
        &self,
        f: impl FnOnce() -> R + 'static,
        kill: &CancellationToken,
    ) -> Result<R, FiberError> {
        let stack = self.take_stack()?;
        // `limit()` includes the guard page; count the largest common page size as unusable.
        let stack_limit = stack.limit().get() + GUARD_BYTES;
        let mut fiber: Coroutine<Resume, Suspended, R, DefaultStack> =
            Coroutine::with_stack(stack, move |yielder, _start: Resume| {
                CURRENT.set(Some(Current { yielder, stack_limit }));
                f()
            });
        let mut input = Resume::Start;
        loop {
            let step = catch_unwind(AssertUnwindSafe(|| fiber.resume(input)));
            CURRENT.set(None);
            drop(LOCAL.take());
            match step {
                Ok(CoroutineResult::Yield(pending)) => {
                    // SAFETY: the fiber suspended on this future in `suspend` and stays suspended until it is resumed
                    // below or dropped, after `future` (declared later, so dropped first even on a panic or when this
                    // call is dropped).
                    let mut future = unsafe { InPlace::new(pending) };
                    input = if kill.is_cancelled() {
                        Resume::Cancelled
                    } else {
                        // Either way the future is dropped here, before the fiber resumes.
                        tokio::select! {
                            biased;
                            () = future.as_pin() => Resume::Done,
                            () = kill.cancelled() => Resume::Cancelled,
                        }
                    };
                    drop(future);
                }
                Ok(CoroutineResult::Return(result)) => {
                    self.put_stack(fiber.into_stack());
                    return Ok(result);
                }
                Err(panic) => {
                    if fiber.done() {
                        self.put_stack(fiber.into_stack());
                    }
                    return Err(FiberError::Panicked(panic_message(&panic)));
                }
            }
        }
    }

    fn take_stack(&self) -> Result<DefaultStack, FiberError> {
        if let Some(stack) = self.stacks.borrow_mut().pop() {
            return Ok(stack);
        }
        let stack = DefaultStack::new(self.stack_size).map_err(FiberError::Stack)?;
        self.created.set(self.created.get() + 1);
        Ok(stack)
    }

    fn put_stack(&self, stack: DefaultStack) {
        let mut stacks = self.stacks.borrow_mut();
        if stacks.len() < self.max_idle {
            stacks.push(stack);
        }
    }
}

/// The future a suspended fiber waits on, polled and dropped where it lies, in the fiber's frame.
struct InPlace(Suspended);

impl InPlace {
    /// # Safety
    /// `pending` is the future a fiber yielded from [`suspend`], and that fiber is neither resumed nor dropped while
    /// this value lives.
    unsafe fn new(pending: Suspended) -> InPlace {
        InPlace(pending)
    }

    fn as_pin(&mut self) -> Pin<&mut dyn Future<Output = ()>> {
        // SAFETY: the future stays in the suspended fiber's frame (see `new`), so it is valid and does not move.
        unsafe { Pin::new_unchecked(self.0.as_mut()) }
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        // SAFETY: valid (see `new`), and dropped only here: `suspend` holds it in a `ManuallyDrop`.
        unsafe { std::ptr::drop_in_place(self.0.as_ptr()) }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn block_on<F: Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn suspend_returns_the_future_output() {
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let out = block_on(pool.run(|| suspend(async { 41 }).map(|v| v + 1), &kill)).unwrap();
        assert_eq!(out, Ok(42));
    }

    /// The output travels through the fiber's own slot: a value with a destructor arrives whole, once; a future
    /// cut short by a kill is dropped before the fiber goes on, and never writes its slot.
    #[test]
    fn outputs_arrive_once_and_a_killed_future_is_dropped_first() {
        struct Flag(Rc<Cell<u32>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops = Rc::new(Cell::new(0));
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let d = drops.clone();
        let text = block_on(pool.run(
            move || {
                let flag = suspend(async move { Flag(d) }).unwrap();
                let text = suspend(async { "x".repeat(1000) }).unwrap();
                (flag.0.get(), text.len())
            },
            &kill,
        ))
        .unwrap();
        assert_eq!(text, (0, 1000));
        assert_eq!(drops.get(), 1);
        kill.cancel();
        let (d, seen) = (drops.clone(), drops.clone());
        let out = block_on(pool.run(
            move || {
                let guard = Flag(d);
                let r = suspend(async move {
                    let _guard = guard;
                    std::future::pending::<u8>().await
                });
                (r, seen.get())
            },
            &kill,
        ))
        .unwrap();
        assert_eq!(out, (Err(Cancelled::Stopped), 2), "the waiting future was dropped before the fiber resumed");
    }

    /// The awaited future lies in the fiber's frame: when the caller gives up on the call (its future is dropped
    /// while the fiber waits), that future is dropped once, and the stack goes back to no one else mid-call.
    #[test]
    fn a_call_dropped_while_its_fiber_waits_drops_the_awaited_future_once() {
        struct Flag(Rc<Cell<u32>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops = Rc::new(Cell::new(0));
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let d = drops.clone();
        block_on(async {
            let call = pool.run(
                move || {
                    let guard = Flag(d);
                    suspend(async move {
                        let _guard = guard;
                        std::future::pending::<()>().await
                    })
                },
                &kill,
            );
            let mut call = std::pin::pin!(call);
            assert!(futures_poll_once(call.as_mut()).await.is_none(), "the call waits");
            assert_eq!(drops.get(), 0);
        });
        assert_eq!(drops.get(), 1, "the awaited future was dropped exactly once");
        assert_eq!(pool.stacks.borrow().len(), 0, "a stack left mid-call is not reused");
    }

    /// Polls `f` once: its output, or `None` while it is pending.
    async fn futures_poll_once<F: Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| match Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }

    #[test]
    fn suspend_outside_a_fiber_is_an_error() {
        assert_eq!(suspend(async {}), Err(Cancelled::NotInFiber));
        assert!(!in_fiber());
    }

    #[test]
    fn fibers_interleave_and_keep_their_locals() {
        block_on(async {
            let pool = Rc::new(FiberPool::new(256 << 10, 4));
            let kill = CancellationToken::new();
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut handles = Vec::new();
            for id in 0..3u64 {
                let (pool, kill, order) = (pool.clone(), kill.clone(), order.clone());
                handles.push(tokio::task::spawn_local(async move {
                    pool.run(
                        move || {
                            set_local(Some(Rc::new(id)));
                            for step in 0..3u64 {
                                // Later ids wake first, so fibers really interleave.
                                suspend(tokio::time::sleep(Duration::from_millis(10 * (3 - id)))).unwrap();
                                assert_eq!(*local::<u64>().unwrap(), id, "fiber sees its own local");
                                order.borrow_mut().push((id, step));
                            }
                        },
                        &kill,
                    )
                    .await
                    .unwrap()
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            let order = order.borrow();
            assert_eq!(order.len(), 9);
            assert_eq!(order[0], (2, 0), "the shortest sleeper finished its first step first");
            assert_eq!(pool.stacks_created(), 3);
        });
    }

    #[test]
    fn kill_resumes_a_waiting_fiber_with_cancelled() {
        block_on(async {
            let pool = Rc::new(FiberPool::new(256 << 10, 4));
            let kill = CancellationToken::new();
            let task = {
                let (pool, kill) = (pool.clone(), kill.clone());
                tokio::task::spawn_local(async move {
                    pool.run(|| suspend(tokio::time::sleep(Duration::from_secs(3600))), &kill).await
                })
            };
            tokio::task::yield_now().await;
            kill.cancel();
            assert_eq!(task.await.unwrap().unwrap(), Err(Cancelled::Stopped));
        });
    }

    #[test]
    fn after_a_kill_a_suspension_never_polls_its_future() {
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let polled = Rc::new(Cell::new(0u32));
        let counting = |polled: Rc<Cell<u32>>| {
            std::future::poll_fn(move |_| {
                polled.set(polled.get() + 1);
                std::task::Poll::Ready(7u8)
            })
        };
        // Not killed: a ready future is polled once and its output delivered.
        let seen = polled.clone();
        assert_eq!(block_on(pool.run(move || suspend(counting(seen)), &kill)).unwrap(), Ok(7));
        assert_eq!(polled.get(), 1);
        // Killed before the fiber suspends: `Cancelled`, and the future (a request not sent yet) is never polled.
        kill.cancel();
        let seen = polled.clone();
        assert_eq!(block_on(pool.run(move || suspend(counting(seen)), &kill)).unwrap(), Err(Cancelled::Stopped));
        assert_eq!(polled.get(), 1);
    }

    #[test]
    fn a_panic_is_caught_and_the_stack_reused() {
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let err = block_on(pool.run(|| -> u8 { panic!("boom") }, &kill)).unwrap_err();
        assert!(matches!(err, FiberError::Panicked(ref m) if m == "boom"));
        assert_eq!(block_on(pool.run(|| 7, &kill)).unwrap(), 7);
        assert_eq!(pool.stacks_created(), 1);
    }

    #[test]
    fn stack_remaining_shrinks_with_depth() {
        fn depth(n: u32) -> usize {
            let pad = [n as u8; 512];
            let here = stack_remaining().unwrap();
            if n == 0 { here } else { depth(n - 1).min(here + usize::from(pad[7])) }
        }
        let pool = FiberPool::new(256 << 10, 4);
        let kill = CancellationToken::new();
        let (shallow, deep) = block_on(pool.run(|| (stack_remaining().unwrap(), depth(50)), &kill)).unwrap();
        assert!(shallow <= 256 << 10);
        assert!(deep + 50 * 512 <= shallow, "{deep} vs {shallow}");
    }
}

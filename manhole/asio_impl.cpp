// The one translation unit that compiles Boost.Asio (BOOST_ASIO_SEPARATE_COMPILATION), so the
// rest of the code includes only declarations and rebuilds stay fast.
#include <boost/asio/impl/src.hpp>

// Boost.Beast compiled once for the whole agent (BOOST_BEAST_SEPARATE_COMPILATION), like Asio in
// manhole/asio_impl.cpp: the HTTP sources include only declarations.
#include <boost/beast/src.hpp>

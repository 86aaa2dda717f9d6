// aperture:policy/types@0.2.0 declares types only; jco still wants a module for it.
export {};
